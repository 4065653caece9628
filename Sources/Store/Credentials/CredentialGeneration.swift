import GRDB
import Glibc

/// A counter that moves whenever an API client changes, kept twice: in the
/// database and in a small file every process of the data folder reads.
///
/// It lets a worker remember authenticated clients (``AuthenticatedClients``)
/// and still see a revocation made by another process, such as
/// `minihost client revoke`, from the next request on. The file's first page
/// is mapped, so that check is a load from memory the kernel keeps in step
/// with every process's `pwrite`, not a system call per request.
///
/// The writer, inside the write transaction that changes a client, sets the
/// file to one past the larger of both values, then the database to the
/// same. A reader stamps what it remembers with the database's value, read in
/// the same statement as the client's row, and trusts it only while the file
/// holds that value. So a row read before the change can never match the file
/// after it; a crash between the file write and the commit leaves the two
/// unequal, which only makes readers miss until the next change. After a
/// machine crash the file may fall back, but nothing remembered survives one.
final class CredentialGeneration: @unchecked Sendable {
    private let descriptor: Int32
    /// The file's first 8 bytes, mapped shared and read-only; nil where the
    /// file system can't map files, and then each read is a `pread`.
    private let mapped: UnsafeRawPointer?
    let path: String

    init(path: String) throws {
        self.path = path
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw StorageError.fromErrno("open \(path)") }
        // A mapped page wholly past the end of the file faults (SIGBUS) when
        // read, so a new file gets its 8 bytes (zero, which no stamp holds)
        // first. Nothing shortens it: writers rewrite those 8 bytes, with
        // `pwrite` rather than through a mapping, so a full disk is an error
        // and not a fault.
        var status = stat()
        var zero: Int64 = 0
        guard fstat(descriptor, &status) == 0,
              status.st_size >= 8 || withUnsafeBytes(of: &zero, { pwrite(descriptor, $0.baseAddress, 8, 0) }) == 8 else {
            let error = StorageError.fromErrno("size \(path)")
            close(descriptor)
            throw error
        }
        let mapping = mmap(nil, 8, PROT_READ, MAP_SHARED, descriptor, 0)
        self.descriptor = descriptor
        self.mapped = mapping == MAP_FAILED ? nil : mapping.map(UnsafeRawPointer.init)
    }

    deinit {
        if let mapped { munmap(UnsafeMutableRawPointer(mutating: mapped), 8) }
        close(descriptor)
    }

    /// The file's value; 0 for a new file, which no stamp holds (the
    /// database's counter starts at 1).
    func current() -> Int64 {
        // A load racing a writer's `pwrite` may see a mix of the two values,
        // as a `pread` could: the kernel's copy isn't atomic either way.
        if let mapped { return Int64(littleEndian: mapped.load(as: Int64.self)) }
        var value: Int64 = 0
        let count = withUnsafeMutableBytes(of: &value) { pread(descriptor, $0.baseAddress, 8, 0) }
        return count == 8 ? Int64(littleEndian: value) : 0
    }

    /// Moves both counters past every value either held. Call inside the
    /// write transaction that changes a client, so writers are serialised by
    /// SQLite's lock across processes.
    func advance(_ db: Database) throws {
        let stored = try Int64.fetchOne(db, sql: "SELECT value FROM minihost_credential_generation WHERE id = 1") ?? 0
        let next = max(stored, current()) + 1
        var bytes = next.littleEndian
        let written = withUnsafeBytes(of: &bytes) { pwrite(descriptor, $0.baseAddress, 8, 0) }
        guard written == 8 else { throw StorageError.fromErrno("write \(path)") }
        try db.execute(sql: "UPDATE minihost_credential_generation SET value = ? WHERE id = 1", arguments: [next])
    }
}
