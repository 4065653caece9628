import Glibc

/// A system or libfcgi call failed; `errno` (or libfcgi's code) says why.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public let call: String
    public let code: Int32

    public init(_ call: String, code: Int32 = errno) {
        self.call = call
        self.code = code
    }

    public var description: String {
        code > 0 ? "\(call) failed: \(String(cString: strerror(code))) (errno \(code))"
                 : "\(call) failed with code \(code)"
    }
}

/// Runs a system call, retrying on EINTR, and throws on -1.
@discardableResult
func systemCall(_ name: String, _ body: () -> Int32) throws -> Int32 {
    while true {
        let result = body()
        if result != -1 { return result }
        if errno == EINTR { continue }
        throw SystemError(name)
    }
}
