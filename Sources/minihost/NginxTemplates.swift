import Foundation
import Mustache
import Routes

/// Renders the nginx configuration from `deploy/nginx/*.mustache`, the one
/// template behind both `minihost up` and the shipped production config.
struct NginxTemplates {
    let directory: String

    /// Finds the templates: `MINIHOST_NGINX_TEMPLATES`, then `deploy/nginx`
    /// above the executable (a build in the source tree), then the current
    /// folder, then the packaged location.
    static func locate() throws -> NginxTemplates {
        var candidates: [String] = []
        if let explicit = ProcessInfo.processInfo.environment["MINIHOST_NGINX_TEMPLATES"] { candidates.append(explicit) }
        var folder = URL(fileURLWithPath: CommandLine.executablePath).deletingLastPathComponent()
        for _ in 0..<5 {
            candidates.append(folder.appendingPathComponent("deploy/nginx").path)
            folder.deleteLastPathComponent()
        }
        candidates.append(FileManager.default.currentDirectoryPath + "/deploy/nginx")
        candidates.append("/usr/share/minihost/nginx")
        for candidate in candidates where FileManager.default.fileExists(atPath: candidate + "/minihost.conf.mustache") {
            return NginxTemplates(directory: candidate)
        }
        throw CommandFailure("nginx templates not found (looked in \(candidates.joined(separator: ", "))); set MINIHOST_NGINX_TEMPLATES")
    }

    /// Renders `name`; every other template in the folder is a partial it may include.
    func render(_ name: String, _ values: [String: Any]) throws -> String {
        var library = MustacheLibrary()
        for file in try FileManager.default.contentsOfDirectory(atPath: directory) where file.hasSuffix(".mustache") {
            let text = try String(contentsOfFile: directory + "/" + file, encoding: .utf8)
            try library.register(text, named: String(file.dropLast(".mustache".count)))
        }
        guard let rendered = library.render(values, withTemplate: name) else {
            throw CommandFailure("nginx template \(name) not found in \(directory)")
        }
        return rendered
    }

    /// Values for the site template: where it listens and what it fronts; the
    /// locations come from the route table (``NginxPlan``).
    struct Site {
        var mode: String
        var tls: Bool
        var httpListen: String
        var httpsListen = "443"
        var ipv6 = false
        var serverName: String
        var sslCertificate = ""
        var sslCertificateKey = ""
        var upstream: String
        var blobRoot: String
        /// The data folder's `public` tree and nginx's index of it.
        var publicRoot: String
        var rateLimit: Bool
        /// nginx's access log for the site (request ids, no query strings).
        var accessLog: String
        /// The content origin's server block (`MINIHOST_CONTENT_ORIGIN`), if any.
        var contentServerName: String?
        var contentListen = ""
        var contentSslCertificate = ""
        var contentSslCertificateKey = ""

        /// Everything the template needs, for the routes `configuration` declares.
        func values(for configuration: ServerConfiguration) throws -> [String: Any] {
            let plan = try NginxPlan(table: RouteTable.standard(configuration))
            let origins = CORSPolicy(publicOrigin: configuration.publicOrigin,
                                     extraOrigins: configuration.extraCORSOrigins).sortedOrigins
            var values: [String: Any] = [
                "mode": mode, "tls": tls, "http_listen": httpListen, "https_listen": httpsListen, "ipv6": ipv6,
                "server_name": serverName, "ssl_certificate": sslCertificate, "ssl_certificate_key": sslCertificateKey,
                "upstream": upstream, "blob_root": blobRoot, "public_root": publicRoot, "rate_limit": rateLimit,
                "access_log": accessLog,
                "content": contentServerName != nil, "content_server_name": contentServerName ?? "",
                "content_listen": contentListen, "content_ssl_certificate": contentSslCertificate,
                "content_ssl_certificate_key": contentSslCertificateKey,
                "cors_origins": origins.map { $0.replacingOccurrences(of: "\"", with: "") },
            ]
            let local = try S4LocalRoutes.nginxValues(configuration.s4)
            values["local_locations"] = local.locations
            for (key, value) in plan.templateValues { values[key] = value }
            let pages = Set(plan.errorPages.map(\.name))
            values["error_pages"] = plan.errorPages.map(\.templateValues)
                + local.errorPages.filter { !pages.contains($0.name) }.map(\.templateValues)
            return values
        }
    }
}

extension CommandLine {
    /// The running executable's real path (`/proc/self/exe`), symlinks resolved.
    static var executablePath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? arguments[0]
    }
}
