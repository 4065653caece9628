import Foundation
import HTTPCore
import Store

/// `POST /api/tus`: creation, creation-defer-length, creation-with-upload
/// and concatenation.
extension TusRoutes {
    func create(_ route: RouteRequest) throws -> Response {
        let request = route.request
        try Self.requireResumable(request)
        let metadata = try request.headers["Upload-Metadata"].map { text in
            guard let parsed = TusMetadata(text) else { throw HTTPErrorResponse(.badRequest, "Upload-Metadata is malformed") }
            return parsed
        }
        let fileName = DisplayName.sanitize(metadata?.string("filename") ?? metadata?.string("name"))
        let contentType = metadata?.string("filetype").flatMap(MediaType.init)?.description ?? "application/octet-stream"
        let concat = request.headers["Upload-Concat"]
        if let concat, concat.hasPrefix("final;") {
            return try createFinal(route, concat: concat, metadata: metadata, fileName: fileName, contentType: contentType)
        }
        guard concat == nil || concat == "partial" else {
            throw HTTPErrorResponse(.badRequest, "Upload-Concat must be partial or final;<upload URLs>")
        }
        let length = try Self.offsetHeader(request, "Upload-Length")
        let deferred = request.headers["Upload-Defer-Length"]
        switch (length, deferred) {
        case (nil, nil): throw HTTPErrorResponse(.badRequest, "Upload-Length or Upload-Defer-Length: 1 required")
        case (_?, _?): throw HTTPErrorResponse(.badRequest, "Upload-Length and Upload-Defer-Length exclude each other")
        case (nil, let value?) where value != "1": throw HTTPErrorResponse(.badRequest, "Upload-Defer-Length must be 1")
        default: break
        }
        if let length, length > maxSize {
            throw HTTPErrorResponse(.payloadTooLarge, "Upload-Length exceeds Tus-Max-Size (\(maxSize) bytes)")
        }
        let hasBody = (request.contentLength ?? 0) > 0 || request.headers["Transfer-Encoding"] != nil
        if hasBody, request.headers["Content-Type"] != Self.offsetContentType {
            throw HTTPErrorResponse(HTTPStatus(code: 415, reason: "Unsupported Media Type"),
                                    "A body at creation must be \(Self.offsetContentType)")
        }
        let terms = TusUploadTerms(metadata: metadata?.storedText, lengthDeferred: length == nil, partial: concat == "partial")
        if length == 0 {
            let upload = try store.tusUploads.createEmpty(owner: owner(of: route), terms: terms, fileName: fileName,
                                                          contentType: contentType)
            var response = Response(status: .created)
            response.headers.set("Location", location(request, upload.id))
            response.headers.set("Upload-Offset", "0")
            return response
        }
        let session = try store.tusUploads.create(owner: owner(of: route), length: length, maxSize: maxSize, terms: terms,
                                                  fileName: fileName, contentType: contentType,
                                                  lifetime: context.configuration.sessionLifetime)
        var response = Response(status: .created)
        response.headers.set("Location", location(request, session.id))
        if hasBody {
            // creation-with-upload: the body is the first PATCH.
            let written = try store.withSessionLock(session.id) {
                try append(request, session: session, terms: terms, offset: 0, index: 0, checksum: try checksum(request))
            }
            response.headers.set("Upload-Offset", String(written.offset))
            if !written.finished { response.headers.set("Upload-Expires", HTTPDate.format(session.expiresAt)) }
        } else {
            response.headers.set("Upload-Expires", HTTPDate.format(session.expiresAt))
        }
        return response
    }

    /// `Upload-Concat: final;<URL> <URL>…`: the finished partial uploads, in order, as one upload.
    private func createFinal(_ route: RouteRequest, concat: String, metadata: TusMetadata?, fileName: String,
                             contentType: String) throws -> Response {
        guard route.request.headers["Upload-Length"] == nil else {
            throw HTTPErrorResponse(.badRequest, "A final upload takes no Upload-Length")
        }
        let references = concat.dropFirst("final;".count).split(separator: " ")
        // Each part is a lookup and a copy: a bound keeps one request's cost in reach.
        guard !references.isEmpty, references.count <= 1000 else {
            throw HTTPErrorResponse(.badRequest, "Upload-Concat: final needs 1 to 1000 partial upload URLs")
        }
        let ids = try references.map { reference -> String in
            let id = reference.split(separator: "/").last.map(String.init) ?? ""
            guard reference.hasSuffix("/api/tus/\(id)"), MinihostRoutes.uploadId.matches(Substring(id)) else {
                throw HTTPErrorResponse(.badRequest, "Not a tus upload URL: \(reference.prefix(200))")
            }
            return id
        }
        let terms = TusUploadTerms(metadata: metadata?.storedText, lengthDeferred: false, partial: false)
        do {
            let upload = try store.tusUploads.concatenate(owner: owner(of: route), ids: ids, maxSize: maxSize, terms: terms,
                                                          fileName: fileName, contentType: contentType)
            var response = Response(status: .created)
            response.headers.set("Location", location(route.request, upload.id))
            return response
        } catch let error as StorageError where error.code == .invalid {
            throw HTTPErrorResponse(.badRequest, "Every part must be a finished partial upload of this client")
        } catch let error as StorageError where error.code == .quotaExceeded {
            throw HTTPErrorResponse(.payloadTooLarge, "The parts together exceed Tus-Max-Size (\(maxSize) bytes)")
        }
    }
}
