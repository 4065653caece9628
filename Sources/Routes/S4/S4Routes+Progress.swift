import Foundation
import HTTPCore
import Store
import Synchronization

extension S4Routes {
    /// `GET /api/objects/upload-progress/:b64key`: server-sent events while
    /// an upload of that key runs: `data: {"loaded","total","status"}` as
    /// bytes arrive, then `event: complete` (or `event: error`). A ticket
    /// must name this key (encoded as in the path, or decoded).
    ///
    /// The stream polls the upload's record on the progress board (a file),
    /// so it holds no database connection; it holds a worker thread, so a
    /// process serves at most ``EventStreamSlots/limit`` at once (503 past
    /// that), each for at most an hour, and one ends soon after its client goes.
    func uploadProgress(_ route: RouteRequest) throws -> Response {
        let encoded = route[parameter: "key"]
        let key = try S4Key.decode(encoded)
        if let ticket = route.identity as? S4TicketIdentity {
            let resource = ticket.ticket.resource
            guard ticket.ticket.resourceType == "upload",
                  resource == encoded || resource == key || (try? S4Key.decode(resource)) == key else {
                throw HTTPErrorResponse(.forbidden, "The ticket is for another resource", code: "Forbidden")
            }
        }
        guard let slot = context.eventStreams.acquire() else {
            throw HTTPErrorResponse(.serviceUnavailable, "Too many event streams; retry shortly", code: "ServiceUnavailable",
                                    headers: HTTPHeaders([("Retry-After", "5")]))
        }
        let board = store.uploadProgress
        let name = Self.progressName(key)
        let request = route.request
        var headers = HTTPHeaders()
        headers.set("Content-Type", "text/event-stream")
        headers.set("Cache-Control", "no-store")
        headers.set("X-Accel-Buffering", "no")
        return Response(status: .ok, headers: headers, body: .stream { writer in
            withExtendedLifetime(slot) {}
            try Self.streamProgress(board: board, name: name, key: key, request: request, writer: writer)
        })
    }

    static func streamProgress(board: UploadProgressBoard, name: String, key: String, request: Request,
                               writer: ResponseBodyWriter) throws {
        func send(_ text: String) throws {
            var bytes = Array(text.utf8)
            try bytes.withUnsafeMutableBytes { try writer.write(UnsafeRawBufferPointer($0)) }
            try writer.flush()
        }
        func event(_ name: String?, _ reading: UploadProgressBoard.Reading?, status: String) throws {
            var object: [String: Any] = ["key": key, "status": status]
            if let reading {
                object["loaded"] = reading.received
                object["total"] = reading.total.map { $0 as Any } ?? NSNull()
            }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            try send((name.map { "event: \($0)\n" } ?? "") + "data: " + String(decoding: data, as: UTF8.self) + "\n\n")
        }
        // Tells the client to reconnect after 2 s if the stream breaks.
        try send("retry: 2000\n\n")
        let started = Date()
        var lastSent: UploadProgressBoard.Reading?
        var lastWrite = Date()
        // A record of an upload that ended more than a few seconds before
        // the stream opened is an earlier upload of the key: wait for the
        // next. (A UI opens the stream, then uploads; one that finished just
        // before the stream connected still gets its `complete`.)
        let initial = board.read(name)
        let stale = initial.flatMap { $0.state != .receiving && Date().timeIntervalSince($0.updatedAt) > 5 ? $0 : nil }
        var reading = stale == nil ? initial : nil
        while Date().timeIntervalSince(started) < 3600, !request.isAbandoned() {
            if let current = reading, current != lastSent {
                switch current.state {
                case .receiving:
                    try event(nil, current, status: "uploading")
                case .complete:
                    try event(nil, current, status: "completed")
                    try event("complete", current, status: "completed")
                    return
                case .failed:
                    try event("error", current, status: "failed")
                    return
                }
                lastSent = current
                lastWrite = Date()
            } else if Date().timeIntervalSince(lastWrite) >= 15 {
                try send(": keep-alive\n\n")
                lastWrite = Date()
            }
            // Nothing started within 5 minutes: nobody is uploading this key.
            if lastSent == nil && Date().timeIntervalSince(started) > 300 {
                try event("error", nil, status: "not_found")
                return
            }
            Thread.sleep(forTimeInterval: 0.25)
            reading = board.read(name)
            if reading == stale { reading = nil }
        }
    }
}

/// Event streams one process holds open at once: each holds a worker thread.
final class EventStreamSlots: Sendable {
    let limit: Int
    private let open = Mutex(0)

    init(limit: Int) { self.limit = limit }

    /// A slot, released when the returned value is (after the stream ends,
    /// or when the answer is dropped without streaming, as for `HEAD`).
    func acquire() -> Slot? {
        let granted = open.withLock { count -> Bool in
            guard count < limit else { return false }
            count += 1
            return true
        }
        return granted ? Slot(owner: self) : nil
    }

    var inUse: Int { open.withLock { $0 } }

    final class Slot: Sendable {
        let owner: EventStreamSlots
        init(owner: EventStreamSlots) { self.owner = owner }
        deinit { owner.open.withLock { $0 -= 1 } }
    }
}
