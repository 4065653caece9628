import Foundation
import HTTPCore
import OpenSSLCrypto
import Store

extension MinihostRoutes {
    /// `POST /api/minihost/upload`: multipart field `file`, streamed to disk.
    func upload(_ route: RouteRequest) throws -> Response {
        let request = route.request
        let client = route.identity(APIClient.self)
        return try audited(request, actor: client.clientKey, action: "upload", uploadId: nil) {
            let maxMB = configuration.maxUploadMB
            let started = Date()
            let received = try FileUploadReceiver(maxBytes: configuration.maxUploadBytes)
                .receive(request, into: store, tooLarge: HTTPErrorResponse(.payloadTooLarge, "File too large (max \(maxMB) MB)"))
            let stored = Date()
            let upload = try store.commitUpload(received.blob, owner: .apiClient(client.clientKey),
                                                fileName: received.fileName, contentType: received.contentType)
            context.logger.debug("upload stored", metadata: [
                "id": "\(upload.id)", "bytes": "\(upload.size)",
                "receive_and_fsync_s": "\(stored.timeIntervalSince(started))",
                "commit_s": "\(Date().timeIntervalSince(stored))",
            ])
            return JSONResponse.make(uploadJSON(upload))
        }
    }

    func uploadJSON(_ upload: Upload) -> [String: Any] {
        [
            "uploadId": upload.id,
            "uploadFileName": upload.fileName,
            "sizeKb": (Double(upload.size) / 1024 * 10).rounded() / 10,
            "size": upload.size,
            "sha256": upload.sha256,
            "contentType": upload.contentType,
            "finishedAt": ISO8601Timestamp.format(upload.finishedAt ?? upload.createdAt),
            "downloadPath": "/api/minihost/download?id=\(upload.id)",
            "storagePath": "blobs/" + store.blobs.relativePath(for: upload.sha256),
            "archiveRelativePath": "\(upload.ownerId)/\(upload.id)/\(upload.fileName)",
        ]
    }

    /// `GET /api/minihost/download?id=…`: the client's own ready upload, as an attachment.
    func download(_ route: RouteRequest) throws -> Response {
        let request = route.request
        let client = route.identity(APIClient.self)
        guard let id = request.query["id"], !id.isEmpty else { throw HTTPErrorResponse(.badRequest, "Missing id") }
        guard let upload = try store.upload(id: id, owner: .apiClient(client.clientKey)), upload.state == .ready else {
            throw HTTPErrorResponse(.notFound, "Upload not found")
        }
        var response = StoredContent.response(upload, store: store, request: request, disposition: .attachment,
                                              cacheControl: "private, no-store")
        // RFC 9530: what the bytes hash to, so a client (minihost pull, push) can check them.
        if let digest = Hex.decode(upload.sha256) {
            response.headers.set("Repr-Digest", "sha-256=:\(Data(digest).base64EncodedString()):")
        }
        return response
    }

    /// `POST /api/minihost/upload_follow_up`: app metadata, handled time,
    /// purge, or purge-for-replacement, applied in one transaction.
    func followUp(_ route: RouteRequest) throws -> Response {
        let request = route.request
        let client = route.identity(APIClient.self)
        let body = route.json
        guard let uploadId = try body.string("uploadId", "upload_id"), !uploadId.isEmpty else {
            throw HTTPErrorResponse(.badRequest, "uploadId (or upload_id) is required")
        }
        let owner = Owner.apiClient(client.clientKey)
        return try audited(request, actor: client.clientKey, action: "follow_up", uploadId: uploadId) {
            let change = try FollowUpRequest.parse(body)
            if change.purge {
                try store.purge(uploadId: uploadId, owner: owner)
                return JSONResponse.make(["ok": true, "uploadId": uploadId, "purged": true])
            }
            let upload = try store.applyAppDataChange(change.appData, uploadId: uploadId, owner: owner)
            if let replaced = change.appData.replacesUploadId {
                // The replaced upload gets its own audit line, so a search by its id finds the purge.
                audit(request, actor: client.clientKey, action: "purge_for_replacement", uploadId: replaced, status: 200,
                      detail: "replaced by \(uploadId)")
            }
            var answer: [String: Any] = [
                "ok": true, "uploadId": upload.id,
                "appPayload": MinihostStore.decodePayload(upload.appPayload),
                "appHandledAt": upload.appHandledAt.map(ISO8601Timestamp.format) ?? NSNull(),
            ]
            if let replaced = change.appData.replacesUploadId { answer["purgedUploadId"] = replaced }
            return JSONResponse.make(answer)
        }
    }

    /// `POST /api/minihost/publishing_upload`: `{upload_id, status}`.
    func publish(_ route: RouteRequest) throws -> Response {
        let request = route.request
        let client = route.identity(APIClient.self)
        let body = route.json
        guard let uploadId = try body.string("upload_id", "uploadId"), !uploadId.isEmpty else {
            throw HTTPErrorResponse(.badRequest, "upload_id is required")
        }
        let statusText = try body.string("status") ?? "published"
        guard let status = Publication.Status(rawValue: statusText) else {
            throw HTTPErrorResponse(.badRequest, "status must be published or unpublished")
        }
        return try audited(request, actor: client.clientKey, action: "publish_\(status.rawValue)", uploadId: uploadId) {
            _ = try store.setPublication(uploadId: uploadId, owner: .apiClient(client.clientKey), status: status)
            var answer: [String: Any] = ["ok": true, "upload_id": uploadId, "uploadId": uploadId, "status": status.rawValue]
            if status == .published {
                answer["cache_url"] = context.contentOrigin(for: request) + "/minihost/cache/" + uploadId
            }
            return JSONResponse.make(answer)
        }
    }

    /// `GET /minihost/cache/:id`: public, only for ready and published uploads.
    /// Inline where ``StoredContent`` allows it, else an attachment.
    func cached(_ route: RouteRequest) throws -> Response {
        guard let upload = try store.publishedUpload(id: route[parameter: "id"]) else {
            throw HTTPErrorResponse(.notFound, "Not found")
        }
        return StoredContent.response(upload, store: store, request: route.request, disposition: .inline,
                                      cacheControl: Self.cacheControl)
    }
}

/// The fields of a follow-up body, validated.
struct FollowUpRequest {
    static let knownKeys: Set<String> = [
        "uploadId", "upload_id", "app_payload", "appPayload", "app_handled_at", "appHandledAt", "_PURGE_FOR_REPLACEMENT",
    ]

    var purge = false
    var appData = AppDataChange()

    static func parse(_ body: [String: Any]) throws -> FollowUpRequest {
        var result = FollowUpRequest()
        var patch: [String: Any]?
        if let raw = body["app_payload"] ?? body["appPayload"], !(raw is NSNull) {
            guard let object = raw as? [String: Any] else {
                throw HTTPErrorResponse(.badRequest, "app_payload must be a JSON object")
            }
            if object.count == 1, let flag = object["_PURGE"], [String: Any].isBoolean(flag), flag as? Bool == true {
                result.purge = true
                return result
            }
            patch = object
        }
        var replaced = body["_PURGE_FOR_REPLACEMENT"]
        if let nested = patch?["_PURGE_FOR_REPLACEMENT"] {
            replaced = replaced ?? nested
            patch?.removeValue(forKey: "_PURGE_FOR_REPLACEMENT")
        }
        if let replaced, !(replaced is NSNull) {
            guard let id = replaced as? String, !id.isEmpty else {
                throw HTTPErrorResponse(.badRequest, "_PURGE_FOR_REPLACEMENT must be the old upload id")
            }
            result.appData.replacesUploadId = id
        }
        for (key, value) in body where !knownKeys.contains(key) {
            if patch == nil { patch = [:] }
            patch![key] = value
        }
        if let patch, !patch.isEmpty { result.appData.payloadPatch = patch }
        let handledKey = body.keys.contains("app_handled_at") ? "app_handled_at" : "appHandledAt"
        if let raw = body[handledKey] {
            if raw is NSNull {
                result.appData.handledAt = .cleared
            } else if let text = raw as? String, let date = ISO8601Timestamp.parse(text) {
                result.appData.handledAt = .set(date)
            } else {
                throw HTTPErrorResponse(.badRequest, "\(handledKey) must be an ISO-8601 date-time such as 2026-04-17T12:00:00Z")
            }
        }
        let handledChanges: Bool
        if case .unchanged = result.appData.handledAt { handledChanges = false } else { handledChanges = true }
        guard result.appData.payloadPatch != nil || handledChanges || result.appData.replacesUploadId != nil else {
            throw HTTPErrorResponse(.badRequest, "Nothing to update: send app_payload, extra keys, or app_handled_at")
        }
        return result
    }
}
