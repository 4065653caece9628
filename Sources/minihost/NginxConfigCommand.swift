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
    @Option(help: "Largest upload in MB (match MINIHOST_MAX_MB).") var maxMb: Int = 50
    @Option(help: "Largest chunk in MB (match MINIHOST_MAX_CHUNK_MB).") var maxChunkMb: Int = 100
    @Option(help: "HTTP listen address.") var httpListen: String = "80"
    @Option(help: "HTTPS listen address.") var httpsListen: String = "443"
    @Option(help: "server_name of the content origin (MINIHOST_CONTENT_ORIGIN's host), a separate site that serves only stored bytes.")
    var contentServerName: String?
    @Option(help: "TLS certificate for the content origin (default: --ssl-certificate).") var contentSslCertificate: String?
    @Option(help: "TLS key for the content origin (default: --ssl-certificate-key).") var contentSslCertificateKey: String?
    @Option(help: "The site's public origin, allowed for CORS like the workers do (default: MINIHOST_PUBLIC_ORIGIN).")
    var publicOrigin: String?
    @Option(help: "More comma-separated CORS origins (default: MINIHOST_CORS_ORIGINS).") var corsOrigins: String?

    func run() throws {
        var site = NginxTemplates.Site(mode: "production, rendered by minihost nginx-config", tls: true,
                                       httpListen: httpListen, httpsListen: httpsListen, ipv6: httpListen == "80",
                                       serverName: serverName, sslCertificate: sslCertificate,
                                       sslCertificateKey: sslCertificateKey, upstream: "unix:" + socket,
                                       blobRoot: blobRoot, maxUploadMB: min(maxMb, 500), maxChunkMB: maxChunkMb,
                                       rateLimit: true)
        site.contentServerName = contentServerName
        // The same list the workers build from these variables.
        let environment = ProcessInfo.processInfo.environment
        var overrides = environment
        if let publicOrigin { overrides["MINIHOST_PUBLIC_ORIGIN"] = publicOrigin }
        if let corsOrigins { overrides["MINIHOST_CORS_ORIGINS"] = corsOrigins }
        let configuration = ServerConfiguration.fromEnvironment(overrides).0
        site.corsOrigins = CORSPolicy(publicOrigin: configuration.publicOrigin,
                                      extraOrigins: configuration.extraCORSOrigins).sortedOrigins
        site.contentSslCertificate = contentSslCertificate ?? sslCertificate
        site.contentSslCertificateKey = contentSslCertificateKey ?? sslCertificateKey
        print(try NginxTemplates.locate().render("minihost.conf", site.values), terminator: "")
    }
}
