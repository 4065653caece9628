import ArgumentParser
import FCGIApp
import Foundation
import Routes
import Store

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the worker pool for an nginx in front (production, under systemd).",
        discussion: """
            Without --socket or --listen it takes the socket systemd passes (LISTEN_FDS).
            Exits 0 after a clean stop, 3 when requests were still running at the end of the grace period.
            """)

    @OptionGroup var dataOptions: DataOptions
    @Option(help: "Listen on this unix socket.") var socket: String?
    @Option(help: "Mode of the unix socket (octal).") var socketMode: String = "660"
    @Option(help: "Listen on HOST:PORT (loopback only, unless --allow-remote).") var listen: String?
    @Flag(help: "Let --listen take an address that isn't loopback (the FastCGI port has no authentication).")
    var allowRemote = false
    @Option(help: "Worker threads (each handles one request at a time).") var workers: Int = WorkerRuntime.defaultWorkers
    @Option(help: "Seconds requests in flight get to finish after SIGTERM.") var gracePeriod: Double = 30
    @Flag(help: "Serve file bytes from the worker instead of X-Accel-Redirect (no nginx in front).")
    var noAccel = false
    /// Set by `minihost up`: plain-HTTP loopback, so cookies can't be `Secure`.
    @Flag(help: .hidden) var development = false

    func validate() throws {
        if socket != nil && listen != nil { throw ValidationError("give --socket or --listen, not both") }
        if let listen {
            guard let address = ListenAddress.parseTCP(listen) else { throw ValidationError("--listen takes HOST:PORT") }
            if !allowRemote && !address.isLoopback {
                throw ValidationError("--listen \(listen) is not a loopback address; anyone who reaches it talks FastCGI "
                                      + "to the workers unauthenticated. Use a unix socket, or pass --allow-remote if a "
                                      + "firewall protects it")
            }
        }
        if UInt32(socketMode, radix: 8) == nil { throw ValidationError("--socket-mode takes an octal mode like 660") }
        if workers < 1 { throw ValidationError("--workers must be at least 1") }
        if !(0...3600).contains(gracePeriod) { throw ValidationError("--grace-period takes 0 to 3600 seconds") }
    }

    func run() throws {
        let logger = Logs.bootstrap()
        let address: ListenAddress
        if let socket {
            address = .unixSocket(path: socket, mode: UInt32(socketMode, radix: 8)!)
        } else if let listen {
            address = ListenAddress.parseTCP(listen)!
        } else {
            address = .systemd
        }
        TerminationSignals.block()
        let runtime = try WorkerRuntime(data: DataDirectory(dataOptions.data), address: address, workers: workers,
                                        secureCookies: !development, gracePeriod: gracePeriod,
                                        fileServing: noAccel ? .worker : .accelRedirect(prefix: "/_blobs/"),
                                        logger: logger)
        if !development && runtime.configuration.publicOrigin == nil {
            logger.warning("MINIHOST_PUBLIC_ORIGIN is not set: links the server hands out take the Host header the client sent. Set it to the site's https origin")
        }
        if !runtime.configuration.s4.authEnabled {
            logger.warning("MINIHOST_S4_AUTH=off: the s4 routes answer anyone without a token (development on loopback only)")
        }
        try runtime.start()
        let signal = TerminationSignals.wait()
        logger.info("stopping", metadata: ["signal": "\(signal)"])
        let clean = runtime.stop()
        logger.info("stopped", metadata: ["clean": "\(clean)"])
        // Ends here, without atexit handlers: the sweeper and dispatch's
        // threads may still run, and OpenSSL's cleanup freeing what a thread
        // is tearing down at that moment crashed a stop (double free, once
        // in a full test run). Everything durable is already on disk.
        fflush(nil)
        _exit(clean ? 0 : 3)
    }
}
