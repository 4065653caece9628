import CFastCGI
import Glibc
import HTTPCore
import Logging

/// Writes a ``Response`` as CGI-style FastCGI output: a `Status:` line,
/// headers, a blank line, then the body (or nothing, for accel redirects).
struct FastCGIResponseWriter {
    let fileServing: FastCGIServer.FileServing
    let logger: Logger

    /// Writes `response` and returns how many body bytes it served (a file
    /// handed to nginx counts whole: nginx sends it, barring a Range).
    @discardableResult
    func write(_ response: Response, method: String, to out: UnsafeMutablePointer<FCGX_Stream>?) -> Int64 {
        guard let out else { return 0 }
        var headers = response.headers
        let sendsBody = method != "HEAD"
        switch response.body {
        case .bytes(let bytes):
            headers.set("Content-Length", String(bytes.count))
            putHeaders(response.status, headers, out)
            if sendsBody { put(bytes, out) }
            return sendsBody ? Int64(bytes.count) : 0
        case .stream(let produce):
            putHeaders(response.status, headers, out)
            guard sendsBody else { return 0 }
            let writer = StreamWriter(out: out)
            do { try produce(writer) } catch {
                logger.warning("stream body ended early", metadata: ["error": "\(error)"])
            }
            return writer.counter.written
        case .file(let file):
            switch fileServing {
            case .accelRedirect(let prefix):
                // nginx replaces Content-Length with the file's; it serves HEAD and Range itself.
                headers.remove("Content-Length")
                headers.set("X-Accel-Redirect", (file.accelPrefix ?? prefix) + file.relativePath)
                putHeaders(response.status, headers, out)
                return sendsBody ? file.size : 0
            case .worker:
                return serveFromWorker(file, response.status, headers, sendsBody: sendsBody, out)
            }
        }
    }

    private func serveFromWorker(_ file: ServedFile, _ status: HTTPStatus, _ headers: HTTPHeaders,
                                 sendsBody: Bool, _ out: UnsafeMutablePointer<FCGX_Stream>) -> Int64 {
        let descriptor = open(file.absolutePath, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            logger.error("stored file missing", metadata: ["path": "\(file.relativePath)"])
            let body = Array(#"{"error":"File not available"}"#.utf8)
            putHeaders(.internalServerError, HTTPHeaders([("Content-Type", "application/json"),
                                                          ("Content-Length", String(body.count))]), out)
            put(body, out)
            return Int64(body.count)
        }
        defer { close(descriptor) }
        var headers = headers
        headers.set("Content-Length", String(file.size))
        putHeaders(status, headers, out)
        guard sendsBody else { return 0 }
        var served: Int64 = 0
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            guard buffer.withUnsafeBytes({ FCGX_PutStr($0.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(count), out) }) == Int32(count) else {
                break  // client went away; nothing else to do for it
            }
            served += Int64(count)
        }
        return served
    }

    private func putHeaders(_ status: HTTPStatus, _ headers: HTTPHeaders, _ out: UnsafeMutablePointer<FCGX_Stream>) {
        var head = "Status: \(status.code) \(status.reason)\r\n"
        for field in headers { head += "\(field.name): \(field.value)\r\n" }
        head += "\r\n"
        put(Array(head.utf8), out)
    }

    private func put(_ bytes: [UInt8], _ out: UnsafeMutablePointer<FCGX_Stream>) {
        guard !bytes.isEmpty else { return }
        _ = bytes.withUnsafeBytes { FCGX_PutStr($0.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(bytes.count), out) }
    }
}

private struct StreamWriter: ResponseBodyWriter {
    final class Counter { var written: Int64 = 0 }
    let out: UnsafeMutablePointer<FCGX_Stream>
    let counter = Counter()

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0 else { return }
        let written = FCGX_PutStr(bytes.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(bytes.count), out)
        if written != Int32(bytes.count) { throw SystemError("FCGX_PutStr", code: FCGX_GetError(out)) }
        counter.written += Int64(written)
    }

    func flush() throws {
        guard FCGX_FFlush(out) == 0 else { throw SystemError("FCGX_FFlush", code: FCGX_GetError(out)) }
    }
}
