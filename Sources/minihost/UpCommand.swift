import ArgumentParser
import FCGIApp
import Foundation
import Glibc
import Logging
import OpenSSLCrypto
import Routes
import Store

struct Up: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run nginx and supervised worker processes in the foreground on 127.0.0.1:PORT (for local use).",
        discussion: """
            Writes the nginx config from deploy/nginx into DATA/nginx, starts nginx and the
            worker processes (`minihost serve`) on one socket, restarts a worker that dies, and
            stops everything on Ctrl-C or SIGTERM. If workers keep dying, or nginx does, it stops
            the rest and exits 1. Rate limits are those of production unless MINIHOST_RATE_LIMIT=off.
            With MINIHOST_CONTENT_ORIGIN=http://127.0.0.1:PORT2 (or a name on PORT) a second
            server block serves stored bytes there.
            """)

    @Option(help: "The loopback port nginx listens on.") var port: Int = 8080
    @OptionGroup var dataOptions: DataOptions
    @Option(help: "Worker threads per process (each handles one request at a time).")
    var workers: Int = WorkerRuntime.defaultWorkers
    @Option(help: "Worker processes sharing the socket; a crash costs only one process's requests.")
    var processes: Int = 1
    @Option(help: "Seconds requests in flight get to finish on stop.") var gracePeriod: Double = 30
    @Option(help: "Worker deaths within 30 s after which up gives up and stops everything.") var maxRestarts: Int = 5

    func validate() throws {
        if !(1...65535).contains(port) { throw ValidationError("--port must be 1-65535") }
        if workers < 1 { throw ValidationError("--workers must be at least 1") }
        if !(1...64).contains(processes) { throw ValidationError("--processes must be 1-64") }
        if !(0...3600).contains(gracePeriod) { throw ValidationError("--grace-period takes 0 to 3600 seconds") }
        if !(0...1_000_000).contains(maxRestarts) { throw ValidationError("--max-restarts takes 0 to 1000000") }
    }

    func run() throws {
        let logger = Logs.bootstrap()
        guard let nginx = ChildProcess.find("nginx") else {
            throw CommandFailure("nginx not found: install it (apt-get install nginx-light) or run `make run`")
        }
        let data = DataDirectory(dataOptions.data)
        let environment = ProcessInfo.processInfo.environment
        let (limits, warnings) = ServerConfiguration.fromEnvironment(environment)
        for warning in warnings { logger.warning("\(warning)") }
        // Migrates the schema once, before any worker opens it, and puts the
        // public tree right before nginx serves from it.
        let store = try MinihostStore(directory: data, configuration: limits.storeConfiguration)
        let hasClients = try !store.clients.list().isEmpty
        try store.reconcilePublicTree()
        // nginx starts with a current index, so a start costs no reload (a
        // reload closes idle keep-alive connections). This context never
        // checks a password: a cheap hasher spares the decoy hash's 0.3 s.
        let context = ServerContext(store: store, configuration: limits, logger: logger,
                                    cookieSigningKey: try data.loadOrCreateSecretKey(), passwordHasher: Scrypt(costLog2: 4))
        try PublicIndex(context: context).refresh()
        let prefix = data.root + "/nginx"
        let runFolder = data.root + "/run"
        for folder in [prefix, runFolder] { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        let socketPath = runFolder + "/workers.sock"
        let rateLimit = (environment["MINIHOST_RATE_LIMIT"] ?? "on").lowercased() != "off"
        let mainConfig = try writeNginxConfig(prefix: prefix, data: data, socketPath: socketPath, limits: limits,
                                              rateLimit: rateLimit)

        // Seen before any worker can write a new one.
        var publicIndex = PublicIndexWatch(tree: PublicTree(directory: data))
        // Block the stop signals before any thread or child exists.
        TerminationSignals.block(TerminationSignals.stopSignals + [SIGCHLD])
        let socket = try ListeningSocket(.unixSocket(path: socketPath, mode: 0o666))
        defer { socket.close() }
        let supervisor = WorkerSupervisor(
            executable: CommandLine.executablePath,
            arguments: ["serve", "--data", data.root, "--workers", String(workers), "--grace-period", String(gracePeriod),
                        "--development"],
            socket: socket.descriptor, count: processes, pidFile: runFolder + "/workers.pid", logger: logger,
            budget: WorkerSupervisor.Budget(restarts: maxRestarts))
        try supervisor.startAll()
        let nginxProcess: ChildProcess
        do {
            nginxProcess = try ChildProcess.spawnTied(nginx, ["-p", prefix, "-c", mainConfig, "-e", prefix + "/error.log"])
        } catch {
            _ = supervisor.stopAll(timeout: gracePeriod + 5)
            throw error
        }
        if !hasClients {
            print("""
                No API clients yet. Create one in another terminal:
                  \(CommandLine.executablePath) client create myapp --scopes upload,download,publish --data \(data.root)
                """)
        }
        if !limits.s4.authEnabled { print(Self.s4AuthOffBanner) }
        print("minihost is up: http://127.0.0.1:\(port)/api/health (rate limits \(rateLimit ? "on" : "off"), "
              + "\(processes) worker process\(processes == 1 ? "" : "es"); Ctrl-C stops)")
        fflush(nil)  // flush stdout before blocking in sigwait

        var failed = false
        var nextIndexCheck = Date()
        loop: while true {
            // Each second: a new public index means nginx must reload to serve it.
            // Timed apart from the wait: SIGCHLD (a worker stopped or resumed) may come more often.
            let signal = TerminationSignals.wait(for: TerminationSignals.stopSignals + [SIGCHLD],
                                                 timeout: max(0.01, nextIndexCheck.timeIntervalSinceNow))
            if nextIndexCheck.timeIntervalSinceNow <= 0 {
                nextIndexCheck = Date().addingTimeInterval(1)
                publicIndex.reloadIfChanged(nginxProcess, pidFile: prefix + "/nginx.pid", logger: logger)
            }
            guard let signal else { continue }
            guard signal == SIGCHLD else {
                logger.info("stopping", metadata: ["signal": "\(signal)"])
                break
            }
            if let status = nginxProcess.poll() {
                logger.error("nginx exited (\(WaitStatus.describe(status))); see \(prefix)/error.log. Stopping the workers")
                failed = true
                break
            }
            switch supervisor.reap() {
            case .gaveUp:
                failed = true
                break loop
            case .restarted, .notOurs:
                continue
            }
        }
        nginxProcess.signal(SIGQUIT)  // graceful: finish requests in flight
        let workersClean = supervisor.stopAll(timeout: gracePeriod + 5)
        nginxProcess.wait(timeout: 10)
        logger.info("stopped", metadata: ["clean": "\(workersClean && !failed)"])
        if failed { throw ExitCode(1) }
        if !workersClean { throw ExitCode(3) }
    }

    /// Renders the site and main configs into `prefix`; returns the main config's path.
    private func writeNginxConfig(prefix: String, data: DataDirectory, socketPath: String, limits: ServerConfiguration,
                                  rateLimit: Bool) throws -> String {
        let templates = try NginxTemplates.locate()
        var site = NginxTemplates.Site(mode: "local, rendered by minihost up", tls: false, httpListen: "127.0.0.1:\(port)",
                                       serverName: "localhost", upstream: "unix:" + socketPath,
                                       blobRoot: data.blobsPath, publicRoot: data.publicPath, rateLimit: rateLimit,
                                       accessLog: prefix + "/access.log")
        if let origin = limits.contentOrigin {
            guard let components = URLComponents(string: origin), let host = components.host else {
                throw CommandFailure("MINIHOST_CONTENT_ORIGIN=\(origin) is not an origin")
            }
            // up listens on loopback only: the content origin is another port,
            // or another name on this one.
            site.contentServerName = host
            site.contentListen = "127.0.0.1:\(components.port ?? port)"
        }
        let siteConfig = prefix + "/minihost.conf"
        try templates.render("minihost.conf", site.values(for: limits)).write(toFile: siteConfig, atomically: true, encoding: .utf8)
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
        return mainConfig
    }
}

/// Tells when the workers installed a new index of public files (its stamp
/// file changed), which nginx reads only when it (re)loads its configuration.
struct PublicIndexWatch {
    let tree: PublicTree
    private var seen: String?

    init(tree: PublicTree) {
        self.tree = tree
        seen = tree.installedIndexStamp()
    }

    /// Sends nginx SIGHUP if the index changed since last seen, once its pid
    /// file says it is ready for one (before, SIGHUP would end it).
    mutating func reloadIfChanged(_ nginx: ChildProcess, pidFile: String, logger: Logger) {
        let pid = (try? String(contentsOfFile: pidFile, encoding: .utf8))
            .flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        guard pid == nginx.pid else { return }
        let stamp = tree.installedIndexStamp()
        guard let stamp, stamp != seen else { return }
        seen = stamp
        logger.info("reloading nginx for a new public index")
        nginx.signal(SIGHUP)
    }
}

extension Up {
    /// Shown on start when the s4 routes answer without a token.
    static let s4AuthOffBanner = """
        ********************************************************************************
        WARNING: MINIHOST_S4_AUTH=off. The s4 routes (/api/buckets, /api/objects,
        /api/local, /api/settings) answer ANYONE who can reach this server, without
        a token. Only for development on loopback; unset it before exposing the server.
        ********************************************************************************
        """
}
