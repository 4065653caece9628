import ArgumentParser
import FCGIApp
import Foundation
import Glibc
import Logging
import Routes
import Store

struct Up: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run nginx and the worker pool in the foreground on 127.0.0.1:PORT (for local use).",
        discussion: """
            Writes the nginx config from deploy/nginx into DATA/nginx, starts nginx and the
            workers, and stops both on Ctrl-C or SIGTERM. Rate limits are those of production
            unless MINIHOST_RATE_LIMIT=off.
            """)

    @Option(help: "The loopback port nginx listens on.") var port: Int = 8080
    @OptionGroup var dataOptions: DataOptions
    @Option(help: "Worker threads (each handles one request at a time).") var workers: Int = WorkerRuntime.defaultWorkers

    func validate() throws {
        if !(1...65535).contains(port) { throw ValidationError("--port must be 1-65535") }
        if workers < 1 { throw ValidationError("--workers must be at least 1") }
    }

    func run() throws {
        let logger = Logs.bootstrap()
        guard let nginx = ChildProcess.find("nginx") else {
            throw CommandFailure("nginx not found: install it (apt-get install nginx-light) or run `make run`")
        }
        let data = DataDirectory(dataOptions.data)
        try data.create()
        let prefix = data.root + "/nginx"
        let runFolder = data.root + "/run"
        for folder in [prefix, runFolder] { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        let socketPath = runFolder + "/workers.sock"
        let environment = ProcessInfo.processInfo.environment
        let rateLimit = (environment["MINIHOST_RATE_LIMIT"] ?? "on").lowercased() != "off"

        // Block the stop signals before any thread exists, so all inherit the mask.
        TerminationSignals.block(TerminationSignals.stopSignals + [SIGCHLD])
        let runtime = try WorkerRuntime(data: data, address: .unixSocket(path: socketPath, mode: 0o666),
                                        workers: workers, secureCookies: false,
                                        fileServing: .accelRedirect(prefix: "/_blobs/"), logger: logger)
        let limits = ServerConfiguration.fromEnvironment(environment).0
        let templates = try NginxTemplates.locate()
        let site = NginxTemplates.Site(mode: "local, rendered by minihost up", tls: false, httpListen: "127.0.0.1:\(port)",
                                       serverName: "localhost", upstream: "unix:" + socketPath,
                                       blobRoot: data.blobsPath, maxUploadMB: limits.maxUploadMB,
                                       maxChunkMB: Int(limits.maxChunkBytes >> 20), rateLimit: rateLimit)
        let siteConfig = prefix + "/minihost.conf"
        try templates.render("minihost.conf", site.values).write(toFile: siteConfig, atomically: true, encoding: .utf8)
        var main: [String: Any] = ["prefix": prefix, "site_config": siteConfig]
        if geteuid() == 0 {
            // Root's nginx workers would run as nobody, who can't read a private
            // data folder: run them as the folder's owner instead.
            var info = stat()
            stat(data.root, &info)
            if let user = getpwuid(info.st_uid), let group = getgrgid(info.st_gid) {
                main["user"] = "\(String(cString: user.pointee.pw_name)) \(String(cString: group.pointee.gr_name))"
            }
        }
        let mainConfig = prefix + "/nginx.conf"
        try templates.render("nginx-local.conf", main).write(toFile: mainConfig, atomically: true, encoding: .utf8)

        try runtime.start()
        let nginxProcess = try ChildProcess.spawn(nginx, ["-p", prefix, "-c", mainConfig, "-e", prefix + "/error.log"])
        if try runtime.store.listClients().isEmpty {
            print("""
                No API clients yet. Create one in another terminal:
                  \(CommandLine.executablePath) client create myapp --scopes upload,download,publish --data \(data.root)
                """)
        }
        print("minihost is up: http://127.0.0.1:\(port)/api/health (rate limits \(rateLimit ? "on" : "off"); Ctrl-C stops)")
        fflush(nil)  // flush stdout before blocking in sigwait

        var exitCode: Int32 = 0
        while true {
            let signal = TerminationSignals.wait(for: TerminationSignals.stopSignals + [SIGCHLD])
            if signal == SIGCHLD {
                guard let status = nginxProcess.poll() else { continue }
                logger.error("nginx exited (status \(status)); see \(prefix)/error.log")
                exitCode = 1
                break
            }
            logger.info("stopping", metadata: ["signal": "\(signal)"])
            nginxProcess.signal(SIGQUIT)  // graceful: finish requests in flight
            break
        }
        _ = runtime.stop()
        nginxProcess.wait(timeout: 10)
        logger.info("stopped")
        if exitCode != 0 { throw ExitCode(exitCode) }
    }
}
