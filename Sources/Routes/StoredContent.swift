import HTTPCore
import Store

/// The rules for answering with stored bytes, which are hostile content:
/// an upload may be HTML or SVG whose script would run with the server's
/// origin, and so with an operator's cookie.
///
/// - Every such answer carries `X-Content-Type-Options: nosniff` and
///   `Content-Security-Policy: sandbox`. Behind nginx the worker's headers
///   are dropped on an accel redirect, so the `/_blobs/` location adds the
///   same two (see `deploy/nginx/minihost.conf.mustache`); these are for
///   `serve --no-accel`.
/// - On the application's own origin only types a browser renders without
///   running code are inline; everything else goes as an attachment.
/// - On a separate content origin (`MINIHOST_CONTENT_ORIGIN`, like a
///   user-content domain) any type may be inline: that origin holds no
///   cookies and serves nothing but stored bytes.
public enum StoredContent {
    public static let hardeningHeaders: [(String, String)] = [
        ("X-Content-Type-Options", "nosniff"),
        ("Content-Security-Policy", "sandbox"),
    ]

    /// Rendered inline on the application's origin: raster images, audio,
    /// video, plain text, CSV, JSON and PDF. An allow-list of whole types;
    /// SVG, HTML, XML and scripts are absent on purpose.
    static let inlineOnApplicationOrigin: Set<String> = [
        "image/png", "image/apng", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp",
        "image/x-icon", "image/vnd.microsoft.icon",
        "video/mp4", "video/webm", "video/ogg", "video/quicktime", "video/mpeg", "video/x-matroska",
        "audio/mpeg", "audio/mp4", "audio/aac", "audio/ogg", "audio/opus", "audio/wav", "audio/x-wav", "audio/wave",
        "audio/webm", "audio/flac", "audio/x-flac",
        "text/plain", "text/csv", "application/json", "application/pdf",
    ]

    /// Whether `contentType` may be shown inline on the application's origin.
    public static func isInlineSafe(_ contentType: String) -> Bool {
        guard let type = MediaType(contentType) else { return false }
        return inlineOnApplicationOrigin.contains(type.essence)
    }

    /// The disposition to answer with when `wanted` was asked for.
    static func disposition(_ wanted: ContentDisposition.Kind, contentType: String,
                            onContentOrigin: Bool) -> ContentDisposition.Kind {
        guard wanted == .inline else { return .attachment }
        return onContentOrigin || isInlineSafe(contentType) ? .inline : .attachment
    }

    /// An answer that serves `upload`'s blob (by accel redirect behind nginx).
    static func response(_ upload: Upload, store: MinihostStore, request: Request,
                         disposition wanted: ContentDisposition.Kind, cacheControl: String) -> Response {
        var headers = HTTPHeaders()
        // Re-parsed on the way out too: rows written before types were parsed
        // whole may hold anything.
        let contentType = MediaType.sanitize(upload.contentType)
        let disposition = disposition(wanted, contentType: contentType, onContentOrigin: request.isContentOrigin)
        headers.set("Content-Type", contentType)
        headers.set("Content-Disposition", ContentDisposition.header(disposition, fileName: upload.fileName))
        headers.set("Cache-Control", cacheControl)
        for (name, value) in hardeningHeaders { headers.set(name, value) }
        let blob = upload.blob ?? upload.sha256
        let file = ServedFile(relativePath: store.blobs.relativePath(for: blob), absolutePath: store.blobs.path(for: blob),
                              size: upload.size)
        return Response(status: .ok, headers: headers, body: .file(file))
    }
}
