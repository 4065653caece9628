import HTTPCore

/// Reads structured values off the front of a fuzzer's input, so one byte
/// string can choose read sizes, methods and field splits deterministically.
public struct FuzzInput {
    public private(set) var bytes: ArraySlice<UInt8>

    public init(_ data: UnsafePointer<UInt8>, _ count: Int) {
        bytes = ArraySlice(UnsafeBufferPointer(start: data, count: count))
    }

    public mutating func byte() -> UInt8 {
        guard let first = bytes.first else { return 0 }
        bytes = bytes.dropFirst()
        return first
    }

    /// Bytes up to the next `separator` (dropped), or the rest.
    public mutating func field(separator: UInt8 = 0) -> [UInt8] {
        if let end = bytes.firstIndex(of: separator) {
            let value = Array(bytes[..<end])
            bytes = bytes[(end + 1)...]
            return value
        }
        defer { bytes = [] }
        return Array(bytes)
    }

    public mutating func string(separator: UInt8 = 0) -> String {
        String(decoding: field(separator: separator), as: UTF8.self)
    }

    public var rest: [UInt8] { Array(bytes) }
}

/// Crashes with a message: libFuzzer records the input that broke an invariant.
public func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { fatalError("invariant broken: \(message())") }
}

/// A body handed out in reads of at most `chunkLimit` bytes, as sockets do.
public func body(_ bytes: [UInt8], chunkLimit: Int) -> BufferedRequestBody {
    BufferedRequestBody(bytes, chunkLimit: max(1, chunkLimit))
}

/// libFuzzer's entry for a program that has its own `main`.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32) -> Int32

/// Runs libFuzzer over `target` with the program's arguments. SwiftPM links
/// an executable target's `main` to `<Target>_main`, so each target defines
/// that symbol and calls this (libFuzzer's own `main` is then never linked).
public func runFuzzer(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                      _ target: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32) -> Int32 {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments, target)
}
