import Foundation
import HTTPCore
import Store

/// The three URLs of a plain upload: `/<id>` (an HTML page with the name,
/// size and a download button), `/s/<id>` (the bytes inline) and `/d/<id>`
/// (the bytes as an attachment). nginx sends the bytes via accel redirect.
extension PlainRoutes {
    /// A link id (96 random bits, URL-safe base64) with an optional extension.
    static let linkId = ParameterConstraint.characters(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", count: 16...16, extension: true,
        regexClass: "A-Za-z0-9_-", example: "AbCdEfGhIjKlMnOp")

    /// A link's bytes may be cached a while; a purge reaches caches within it.
    static let cacheControl = "public, max-age=300"

    /// Public links: no credentials, no rate limit; the bytes also on the
    /// content origin, answered by nginx itself from the public tree.
    static func registerLinks(in table: inout RouteTable) {
        table.group(.json, limit: .none) { links in
            let constraints = ["id": linkId]
            let file = PublicFile(tree: .links, cacheControl: cacheControl)
            links.add("GET", "/s/:id", constraints: constraints, onContentOrigin: true, publicFile: file) {
                try Self($0.server).serve($0, attachment: false)
            }
            links.add("GET", "/d/:id", constraints: constraints, onContentOrigin: true, publicFile: file) {
                try Self($0.server).serve($0, attachment: true)
            }
            links.add("GET", "/:id", constraints: constraints) { try Self($0.server).page($0) }
        }
    }

    /// `withExtension`: append the file's extension (`abc.pdf`), as
    /// basicHTMLUpload's links do; the id alone still resolves.
    func links(for plain: PlainUpload, _ request: Request, withExtension: Bool = false) -> String {
        let upload = plain.upload
        let origin = context.origin(for: request)
        let bytesOrigin = context.contentOrigin(for: request)
        var id = upload.publicId ?? upload.id
        if withExtension, let dot = upload.fileName.lastIndex(of: "."),
           case let ext = upload.fileName[upload.fileName.index(after: dot)...],
           (1...16).contains(ext.count), ext.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) {
            id += "." + ext
        }
        let raw = "\(bytesOrigin)/s/\(id)"
        let link = plain.attributes.skipEmbeddedPage ? raw : "\(origin)/\(id)"
        return "Link: \(link)\nRaw: \(raw)\nDownload: \(bytesOrigin)/d/\(id)"
    }

    /// The upload behind a link id; an extension after the id (`abc.pdf`) is ignored.
    func linked(_ raw: String?) throws -> PlainUpload {
        guard var id = raw, !id.isEmpty else { throw HTTPErrorResponse(.notFound, "Not found") }
        if let dot = id.firstASCIIIndex(of: ".") { id = String(id[..<dot]) }
        guard let plain = try store.plainUploads.upload(publicId: id) else { throw HTTPErrorResponse(.notFound, "Not found") }
        return plain
    }

    func serve(_ route: RouteRequest, attachment: Bool) throws -> Response {
        let plain = try linked(route[parameter: "id"])
        return StoredContent.response(plain.upload, store: store, request: route.request,
                                      disposition: attachment || plain.attributes.forceDownload ? .attachment : .inline,
                                      cacheControl: Self.cacheControl)
    }

    func page(_ route: RouteRequest) throws -> Response {
        let plain = try linked(route[parameter: "id"])
        let upload = plain.upload
        let publicId = upload.publicId ?? upload.id
        // Relative unless the bytes live on a separate content origin.
        let bytesOrigin = context.configuration.contentOrigin ?? ""
        if plain.attributes.skipEmbeddedPage {
            var response = Response(status: HTTPStatus(code: 302, reason: "Found"))
            response.headers.set("Location", "\(bytesOrigin)/s/\(publicId)")
            return response
        }
        let name = HTML.escape(upload.fileName)
        let html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(name)</title>
            <style>body{font:16px system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem}
            a.button{display:inline-block;padding:.6rem 1.2rem;background:#1f6feb;color:#fff;border-radius:.4rem;text-decoration:none}</style>
            </head><body>
            <h1>\(name)</h1>
            <p>\(ByteCount.format(upload.size)) · \(HTML.escape(upload.contentType))</p>
            <p><a class="button" href="\(HTML.escape(bytesOrigin))/d/\(publicId)">Download</a> <a href="\(HTML.escape(bytesOrigin))/s/\(publicId)">Open</a></p>
            </body></html>
            """
        var headers = HTTPHeaders()
        headers.set("Content-Type", "text/html; charset=utf-8")
        headers.set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
        headers.set("X-Content-Type-Options", "nosniff")
        return Response(status: .ok, headers: headers, body: .bytes(Array(html.utf8)))
    }
}

enum HTML {
    static func escape(_ text: String) -> String {
        var out = ""
        for char in text {
            switch char {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(char)
            }
        }
        return out
    }
}

enum ByteCount {
    static func format(_ bytes: Int64) -> String {
        let units = ["bytes", "KB", "MB", "GB", "TB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(bytes) bytes" : String(format: "%.1f %@", value, units[unit])
    }
}
