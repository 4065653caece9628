import ArgumentParser
import Foundation
import Routes

struct NginxConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nginx-config",
        abstract: "Print the production nginx site config (deploy/nginx/minihost.conf is this output).")

    @Option(help: "server_name") var serverName: String = "files.example.com"
    @Option(help: "TLS certificate path.") var sslCertificate: String = "/etc/letsencrypt/live/files.example.com/fullchain.pem"
    @Option(help: "TLS key path.") var sslCertificateKey: String = "/etc/letsencrypt/live/files.example.com/privkey.pem"
    @Option(help: "The workers' socket, as systemd creates it.") var socket: String = "/run/minihost/minihost.sock"
    @Option(help: "The data folder's blob directory.") var blobRoot: String = "/var/lib/minihost/blobs"
    @Option(help: "The data folder's public tree (links nginx serves public files from, and its index).")
    var publicRoot: String = "/var/lib/minihost/public"
    @Option(help: "Largest upload in MB (match MINIHOST_MAX_MB).") var maxMb: Int = 50
    @Option(help: "Largest chunk in MB (match MINIHOST_MAX_CHUNK_MB).") var maxChunkMb: Int = 100
    @Option(help: "Largest uploader-dialect upload in MB (match MINIHOST_UPLOADER_MAX_MB).")
    var uploaderMaxMb: Int = UploaderConfiguration.defaultMaxMB
    @Option(help: "Largest skysend-dialect upload in MB (match MINIHOST_SKYSEND_MAX_MB).")
    var skysendMaxMb: Int = Int(SkysendConfiguration().maxUploadBytes >> 20)
    @Option(help: "HTTP listen address.") var httpListen: String = "80"
    @Option(help: "HTTPS listen address.") var httpsListen: String = "443"
    @Option(help: "server_name of the content origin (MINIHOST_CONTENT_ORIGIN's host), a separate site that serves only stored bytes.")
    var contentServerName: String?
    @Option(help: "TLS certificate for the content origin (default: --ssl-certificate).") var contentSslCertificate: String?
    @Option(help: "TLS key for the content origin (default: --ssl-certificate-key).") var contentSslCertificateKey: String?
    @Option(help: "The site's public origin, allowed for CORS like the workers do (default: MINIHOST_PUBLIC_ORIGIN).")
    var publicOrigin: String?
    @Option(help: "More comma-separated CORS origins (default: MINIHOST_CORS_ORIGINS).") var corsOrigins: String?

    func validate() throws {
        if !(1...ServerConfiguration.maxMBCap).contains(maxMb) {
            throw ValidationError("--max-mb takes 1 to \(ServerConfiguration.maxMBCap)")
        }
        if !(1...4096).contains(maxChunkMb) { throw ValidationError("--max-chunk-mb takes 1 to 4096") }
        if !(1...16_384).contains(uploaderMaxMb) { throw ValidationError("--uploader-max-mb takes 1 to 16384") }
        if !(1...1_048_576).contains(skysendMaxMb) { throw ValidationError("--skysend-max-mb takes 1 to 1048576") }
    }

    func run() throws {
        var site = NginxTemplates.Site(mode: "production, rendered by minihost nginx-config", tls: true,
                                       httpListen: httpListen, httpsListen: httpsListen, ipv6: httpListen == "80",
                                       serverName: serverName, sslCertificate: sslCertificate,
                                       sslCertificateKey: sslCertificateKey, upstream: "unix:" + socket,
                                       blobRoot: blobRoot, publicRoot: publicRoot, rateLimit: true,
                                       accessLog: "/var/log/nginx/minihost.access.log")
        site.contentServerName = contentServerName
        site.contentSslCertificate = contentSslCertificate ?? sslCertificate
        site.contentSslCertificateKey = contentSslCertificateKey ?? sslCertificateKey
        // The routes and limits the workers will have: the same variables, with these options on top.
        var environment = ProcessInfo.processInfo.environment
        environment["MINIHOST_MAX_MB"] = String(maxMb)
        environment["MINIHOST_MAX_CHUNK_MB"] = String(maxChunkMb)
        environment["MINIHOST_UPLOADER_MAX_MB"] = String(uploaderMaxMb)
        environment["MINIHOST_SKYSEND_MAX_MB"] = String(skysendMaxMb)
        if let publicOrigin { environment["MINIHOST_PUBLIC_ORIGIN"] = publicOrigin }
        if let corsOrigins { environment["MINIHOST_CORS_ORIGINS"] = corsOrigins }
        let configuration = ServerConfiguration.fromEnvironment(environment).0
        print(try NginxTemplates.locate().render("minihost.conf", site.values(for: configuration)), terminator: "")
    }
}
