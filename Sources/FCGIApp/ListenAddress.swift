import Glibc
import HTTPCore

/// Where the worker pool accepts FastCGI connections from nginx.
public enum ListenAddress: Sendable, Equatable, CustomStringConvertible {
    /// A unix socket created at `path` with file mode `mode` (nginx must be able to connect).
    case unixSocket(path: String, mode: UInt32 = 0o660)
    /// A TCP address, for loopback use only.
    case tcp(host: String, port: Int)
    /// The first socket passed by systemd socket activation (`LISTEN_FDS`).
    case systemd

    public var description: String {
        switch self {
        case .unixSocket(let path, let mode): return "unix:\(path) (mode \(String(mode, radix: 8)))"
        case .tcp(let host, let port): return "\(host):\(port)"
        case .systemd: return "systemd socket (fd 3)"
        }
    }

    /// True for a unix socket, and for TCP on 127.0.0.0/8 or ::1.
    public var isLoopback: Bool {
        guard case .tcp(let host, _) = self else { return true }
        return LoopbackAddress.contains(host)
    }

    /// Parses `HOST:PORT`, for example `127.0.0.1:9000`.
    public static func parseTCP(_ text: String) -> ListenAddress? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (1...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : .tcp(host: host, port: port)
    }
}

/// A listening socket. Opened here rather than with `FCGX_OpenSocket` so the
/// unix socket's mode is set. `minihost up` opens one and passes it to each
/// worker process it supervises, so the socket outlives a worker's crash.
public final class ListeningSocket: Sendable {
    public let descriptor: Int32
    private let unlinkPath: String?

    public init(_ address: ListenAddress, backlog: Int32 = 1024) throws {
        switch address {
        case .systemd:
            let environment = ProcessEnvironment.current
            guard let count = environment["LISTEN_FDS"].flatMap(Int.init), count >= 1 else {
                throw SystemError("LISTEN_FDS (no socket passed by systemd)", code: EINVAL)
            }
            if let pid = environment["LISTEN_PID"].flatMap(Int32.init), pid != getpid() {
                throw SystemError("LISTEN_PID (socket passed to another process)", code: EINVAL)
            }
            descriptor = 3
            unlinkPath = nil
        case .unixSocket(let path, let mode):
            descriptor = try systemCall("socket") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
            var info = stat()
            if lstat(path, &info) == 0 {
                // Only ever remove a leftover socket, never a file someone put there.
                guard info.st_mode & S_IFMT == S_IFSOCK else {
                    Glibc.close(descriptor)
                    throw SystemError("bind \(path) (exists and is not a socket)", code: EEXIST)
                }
                unlink(path)
            }
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            let pathBytes = Array(path.utf8)
            guard pathBytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
                Glibc.close(descriptor)
                throw SystemError("bind \(path) (path too long)", code: ENAMETOOLONG)
            }
            withUnsafeMutableBytes(of: &addr.sun_path) { raw in
                raw.copyBytes(from: pathBytes)
                raw[pathBytes.count] = 0
            }
            let fd = descriptor
            do {
                try systemCall("bind \(path)") {
                    withUnsafePointer(to: &addr) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                        }
                    }
                }
                try systemCall("chmod \(path)") { chmod(path, mode_t(mode)) }
            } catch {
                Glibc.close(fd)
                throw error
            }
            unlinkPath = path
        case .tcp(let host, let port):
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE
            var result: UnsafeMutablePointer<addrinfo>?
            let status = getaddrinfo(host, String(port), &hints, &result)
            guard status == 0, let info = result else {
                throw SystemError("getaddrinfo \(host) (use a numeric address)", code: EINVAL)
            }
            defer { freeaddrinfo(result) }
            descriptor = try systemCall("socket") { socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
            var yes: Int32 = 1
            setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
            let fd = descriptor
            do {
                try systemCall("bind \(host):\(port)") { bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) }
            } catch {
                Glibc.close(fd)
                throw error
            }
            unlinkPath = nil
        }
        if address != .systemd {
            let fd = descriptor
            do { try systemCall("listen") { listen(fd, backlog) } } catch { Glibc.close(fd); throw error }
        }
        // A passed descriptor that isn't a listening socket would make every
        // accept fail at once and leave a server that answers nothing.
        var listening: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) == 0, listening == 1 else {
            throw SystemError("\(address) is not a listening socket", code: ENOTSOCK)
        }
    }

    /// Closes this process's descriptor (the socket lives on in any other
    /// process holding it) and removes a unix socket this process created.
    public func close() {
        Glibc.close(descriptor)
        if let path = unlinkPath { unlink(path) }
    }
}

/// Reads the process environment once; `ProcessInfo` would pull Foundation into this module.
enum ProcessEnvironment {
    static var current: [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }
}
