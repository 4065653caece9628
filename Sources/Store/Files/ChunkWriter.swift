import Foundation
import Glibc

/// Receives one chunk of a resumable upload, from
/// ``MinihostStore/makeChunkWriter(sessionId:index:expectedSize:)``; hand it
/// to ``MinihostStore/acceptChunk(_:now:)`` once the bytes are all written.
///
/// A chunk of the session's usual size goes straight into the session file at
/// `index × chunkSize`, so finish needn't copy it. Anything else (an irregular
/// size, a re-sent chunk, a second process) goes to a temporary file of its
/// own. A chunk that turns out larger than its slot moves to its own file
/// mid-way; the bytes stay the same. Dropped without being accepted, the
/// writer removes its temporary file and frees its slot.
public final class ChunkWriter {
    public let sessionId: String
    public let index: Int64
    /// For a session written in order (tus), the offset this chunk starts
    /// at: every acknowledged byte before it. nil for chunks in slots.
    let appendOffset: Int64?
    public private(set) var size: Int64 = 0

    /// A chunk slot in the session file. Its bytes go through a
    /// ``BackgroundWriter`` once the first megabyte is in, so the request
    /// thread keeps draining the socket while they are written (written
    /// inline, a tus upload in 8 MiB `PATCH`es stalled nginx and the client
    /// on every page-cache copy).
    final class Slot {
        let state: SessionFileState
        let descriptor: Int32
        let offset: Int64
        let capacity: Int64
        /// Bytes not yet handed to the helper, which follow `submitted`;
        /// nil once flushed.
        var buffer: UploadBuffer? = UploadBuffers.shared.take()
        var submitted: Int64 = 0
        var background: BackgroundWriter?
        /// The session's running hash, carried on through these bytes as
        /// they are written when the slot starts where the hash has got.
        var continuation: SessionFileState.Continuation?
        /// The helper still hashing the written bytes into `continuation`.
        var hashing: BackgroundWriter?

        init(state: SessionFileState, descriptor: Int32, offset: Int64, capacity: Int64) {
            self.state = state
            self.descriptor = descriptor
            self.offset = offset
            self.capacity = capacity
            continuation = state.continuation(at: offset)
        }
    }

    enum Target {
        case slot(Slot)
        case ownFile(BlobWriter)
        case done
    }

    /// Fsync'd bytes, ready to record. In place, the running hash may still
    /// be taking them in: `hashing` (if any) finishes it.
    enum Completed {
        case inPlace(ChunkSpan, SessionFileState, SessionFileState.Continuation?, hashing: BackgroundWriter?)
        case ownFile(CompletedBlob)
    }

    private let blobs: BlobStore
    private(set) var target: Target

    init(sessionId: String, index: Int64, appendOffset: Int64? = nil, target: Target, blobs: BlobStore) {
        self.sessionId = sessionId
        self.index = index
        self.appendOffset = appendOffset
        self.target = target
        self.blobs = blobs
    }

    deinit { abandon() }

    /// Whether the bytes so far went into the session file.
    public var isInPlace: Bool {
        if case .slot = target { return true }
        return false
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard !bytes.isEmpty else { return }
        switch target {
        case .slot(let slot):
            if size + Int64(bytes.count) > slot.capacity {
                try moveToOwnFile(slot)
                return try write(bytes)
            }
            try slot.state.checkWritable()
            guard var filling = slot.buffer else { throw StorageError(.invalid, "chunk writer already flushed") }
            var rest = bytes
            while !rest.isEmpty {
                rest = UnsafeRawBufferPointer(rebasing: rest[filling.append(rest)...])
                if filling.isFull { filling = try submit(filling, of: slot) }
            }
            size += Int64(bytes.count)
        case .ownFile(let writer):
            try writer.write(bytes)
            size += Int64(bytes.count)
        case .done:
            throw StorageError(.invalid, "chunk writer already finished")
        }
    }

    /// Hands the slot's full buffer to its helper, starting one the first
    /// time; returns the next buffer to fill.
    private func submit(_ full: UploadBuffer, of slot: Slot) throws -> UploadBuffer {
        if slot.background == nil {
            let state = slot.state
            // Each chunk ends in an fsync before it is acknowledged: writeback
            // every MiB leaves that fsync little to wait for.
            slot.background = BackgroundWriter(descriptor: slot.descriptor, hasher: slot.continuation?.hasher,
                                               file: "session file", offset: slot.offset,
                                               writebackStep: 1 << 20,
                                               beginWrite: { try state.beginWrite() }, endWrite: { state.endWrite() })
        }
        slot.buffer = nil  // the helper's now, even if the hand-over fails
        try slot.background!.submit(full)
        slot.submitted += Int64(full.count)
        let next = try slot.background!.takeBuffer()
        slot.buffer = next
        return next
    }

    /// Writes what is still buffered and waits for the helper: every byte
    /// received is then in the file (not yet on disk). The running hash may
    /// still be catching up (`slot.hashing`).
    private func flush(_ slot: Slot) throws {
        guard let last = slot.buffer else { return }
        slot.buffer = nil
        if let background = slot.background {
            if !last.isEmpty {
                try background.submit(last)
                slot.submitted += Int64(last.count)
            } else {
                UploadBuffers.shared.giveBack(last)
            }
            slot.background = nil
            try background.drainWrites()
            slot.hashing = background
        } else {
            defer { UploadBuffers.shared.giveBack(last) }
            if !last.isEmpty {
                try slot.state.beginWrite()
                defer { slot.state.endWrite() }
                try slot.continuation?.hasher.update(last.bytes)
                try SessionFile.writeAll(slot.descriptor, last.bytes, at: slot.offset + slot.submitted)
                slot.submitted += Int64(last.count)
            }
        }
    }

    /// Copies what went into the slot to a temporary file and carries on there.
    private func moveToOwnFile(_ slot: Slot) throws {
        try flush(slot)
        let writer = try blobs.makeWriter()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: SessionFile.ioSize, alignment: 16)
        defer { buffer.deallocate() }
        do {
            try SessionFile.readRange(slot.descriptor, offset: slot.offset, count: size, buffer: buffer) { try writer.write($0) }
        } catch {
            writer.abandon()
            throw error
        }
        close(slot.descriptor)
        slot.state.release(index)
        target = .ownFile(writer)
    }

    /// Makes the bytes durable and hands them over; the writer is done after this.
    func complete() throws -> Completed {
        switch target {
        case .slot(let slot):
            try flush(slot)
            try slot.state.beginWrite()  // sealed since? then finish owns the file: refuse.
            defer { slot.state.endWrite() }
            if fdatasync(slot.descriptor) != 0 { throw StorageError.fromErrno("fsync session file") }
            close(slot.descriptor)
            target = .done
            return .inPlace(ChunkSpan(index: index, offset: slot.offset, size: size), slot.state, slot.continuation,
                            hashing: slot.hashing)
        case .ownFile(let writer):
            let blob = try writer.finish()
            target = .done
            return .ownFile(blob)
        case .done:
            throw StorageError(.invalid, "chunk writer already finished")
        }
    }

    /// Frees the slot or removes the temporary file.
    public func abandon() {
        switch target {
        case .slot(let slot):
            slot.background?.cancel()
            slot.background = nil
            if let buffer = slot.buffer { UploadBuffers.shared.giveBack(buffer) }
            slot.buffer = nil
            close(slot.descriptor)
            slot.state.release(index)
        case .ownFile(let writer):
            writer.abandon()
        case .done:
            break
        }
        target = .done
    }
}
