import Foundation

/// A content type from a file name's extension, for uploads whose client
/// didn't say (chunks with no part header, `application/octet-stream`
/// parts). Unknown types are served as attachments.
public enum MediaTypeGuess {
    static let byExtension: [String: String] = [
        "txt": "text/plain; charset=utf-8", "html": "text/html; charset=utf-8", "css": "text/css", "csv": "text/csv",
        "json": "application/json", "pdf": "application/pdf", "zip": "application/zip", "gz": "application/gzip",
        "tar": "application/x-tar", "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
        "webp": "image/webp", "svg": "image/svg+xml", "mp4": "video/mp4", "webm": "video/webm", "mp3": "audio/mpeg",
        "wav": "audio/wav", "ogg": "audio/ogg", "mov": "video/quicktime", "mkv": "video/x-matroska",
        "m4a": "audio/mp4", "flac": "audio/flac", "opus": "audio/opus", "avif": "image/avif", "bmp": "image/bmp",
        "ico": "image/x-icon", "md": "text/markdown; charset=utf-8", "xml": "application/xml", "js": "text/javascript",
        "7z": "application/x-7z-compressed", "apk": "application/vnd.android.package-archive",
    ]

    public static func forFileName(_ name: String) -> String {
        guard let dot = name.lastIndex(of: ".") else { return "application/octet-stream" }
        return byExtension[name[name.index(after: dot)...].lowercased()] ?? "application/octet-stream"
    }
}
