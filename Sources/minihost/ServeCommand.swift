import ArgumentParser
import FCGIApp
import Foundation
import Store

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the worker pool for an nginx in front (production, under systemd).",
        discussion: "Without --socket or --listen it takes the socket systemd passes (LISTEN_FDS).")

    @OptionGroup var dataOptions: DataOptions
    @Option(help: "Listen on this unix socket.") var socket: String?
    @Option(help: "Mode of the unix socket (octal).") var socketMode: String = "660"
    @Option(help: "Listen on HOST:PORT (loopback only).") var listen: String?
    @Option(help: "Worker threads (each handles one request at a time).") var workers: Int = WorkerRuntime.defaultWorkers
    @Flag(help: "Serve file bytes from the worker instead of X-Accel-Redirect (no nginx in front).")
    var noAccel = false

    func validate() throws {
        if socket != nil && listen != nil { throw ValidationError("give --socket or --listen, not both") }
        if let listen, ListenAddress.parseTCP(listen) == nil { throw ValidationError("--listen takes HOST:PORT") }
        if UInt32(socketMode, radix: 8) == nil { throw ValidationError("--socket-mode takes an octal mode like 660") }
        if workers < 1 { throw ValidationError("--workers must be at least 1") }
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
                                        secureCookies: true,
                                        fileServing: noAccel ? .worker : .accelRedirect(prefix: "/_blobs/"),
                                        logger: logger)
        try runtime.start()
        let signal = TerminationSignals.wait()
        logger.info("stopping", metadata: ["signal": "\(signal)"])
        _ = runtime.stop()
        logger.info("stopped")
    }
}
