import CFastCGI
import Glibc
import HTTPCore
import Logging
import Synchronization

/// Handles one request end to end on the calling worker thread.
public typealias Responder = @Sendable (Request) -> Response

/// Told about each request once its answer is written (the request log, metrics).
/// Each worker thread makes its own (see ``FastCGIServer/init(configuration:logger:makeObserver:responder:)``),
/// so an observer may keep state without a lock.
public typealias RequestObserver = (Request, Response, RequestOutcome) -> Void

/// What one request cost, measured by the pool around the responder and the write.
public struct RequestOutcome: Sendable {
    /// Body bytes the worker served (a file handed to nginx counts whole).
    public var bytesSent: Int64
    /// Body bytes the handlers read.
    public var bytesReceived: Int64
    /// From accept to the answer handed to nginx.
    public var duration: Duration
}

/// The worker pool: N threads, each blocking in `FCGX_Accept_r` on one shared
/// listening socket and handling one request at a time, synchronously.
///
/// Blocking threads rather than Swift concurrency: libfcgi's streams block, and
/// a request body read from a slow client must not stall a cooperative pool.
public final class FastCGIServer: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var address: ListenAddress
        /// Threads accepting requests. A thread is held for the whole request,
        /// including the time a streamed upload takes to arrive.
        public var workerCount: Int
        /// How files are served: through nginx (`X-Accel-Redirect`) or by the worker.
        public var fileServing: FileServing
        /// How long requests in flight may take to finish after a stop is asked for.
        public var shutdownGracePeriod: Double

        public init(address: ListenAddress, workerCount: Int = 64,
                    fileServing: FileServing = .accelRedirect(prefix: "/_blobs/"),
                    shutdownGracePeriod: Double = 30) {
            self.address = address
            self.workerCount = max(1, workerCount)
            self.fileServing = fileServing
            self.shutdownGracePeriod = shutdownGracePeriod
        }
    }

    public enum FileServing: Sendable, Equatable {
        /// Answer `X-Accel-Redirect: <prefix><relative path>`; nginx sends the bytes.
        case accelRedirect(prefix: String)
        /// Stream the file from the worker (no nginx in front, or accel disabled).
        case worker
    }

    public let configuration: Configuration
    private let responder: Responder
    private let makeObserver: (@Sendable () -> RequestObserver)?
    private let busy = Atomic<Int>(0)
    private let logger: Logger
    private var socket: ListeningSocket?
    private let threads = WorkerThreads()

    /// `makeObserver` is called once on each worker thread, for an observer
    /// that thread alone calls.
    public init(configuration: Configuration, logger: Logger, makeObserver: (@Sendable () -> RequestObserver)? = nil,
                responder: @escaping Responder) {
        self.configuration = configuration
        self.responder = responder
        self.makeObserver = makeObserver
        self.logger = logger
    }

    /// Threads handling a request right now (the rest wait in accept).
    public var busyThreads: Int { busy.load(ordering: .relaxed) }

    /// Opens the socket and starts the worker threads; returns at once.
    /// Block SIGINT and SIGTERM before calling (see ``TerminationSignals``) so
    /// that the threads inherit the mask and only the waiting thread sees them.
    public func start() throws {
        guard FCGX_Init() == 0 else { throw SystemError("FCGX_Init", code: -1) }
        AcceptInterruption.install()
        AcceptInterruption.block()  // inherited by the threads; each unblocks it around accept
        let socket = try ListeningSocket(configuration.address)
        self.socket = socket
        for index in 0..<configuration.workerCount {
            threads.starting()
            try spawnThread(name: "fcgi-\(index)") { [self] in
                threads.register()
                defer { threads.unregister() }
                workerLoop(listener: socket.descriptor)
            }
        }
        logger.info("worker pool listening", metadata: [
            "address": "\(configuration.address)", "workers": "\(configuration.workerCount)",
        ])
    }

    /// Stops accepting, lets requests in flight finish within the grace period,
    /// and returns true when every thread ended in time.
    ///
    /// The listening socket may be shared (systemd's, or `minihost up`'s
    /// passed to several worker processes), so it is never shut down: that
    /// would refuse connections for every process holding it, and for the
    /// next one systemd starts. Instead each thread idle in accept is woken
    /// by a signal it only unblocks while accepting (see ``AcceptInterruption``).
    @discardableResult
    public func stop() -> Bool {
        guard let socket else { return true }
        threads.stopping = true
        FCGX_ShutdownPending()
        let finished = threads.waitUntilNone(timeout: configuration.shutdownGracePeriod) {
            threads.signalAll(AcceptInterruption.signal)
        }
        if !finished {
            logger.warning("requests still in flight after the grace period; exiting anyway",
                           metadata: ["busy": "\(threads.count)"])
        }
        socket.close()
        self.socket = nil
        return finished
    }

    private func workerLoop(listener: Int32) {
        var request = FCGX_Request()
        guard FCGX_InitRequest(&request, listener, 0) == 0 else {
            logger.error("FCGX_InitRequest failed")
            return
        }
        let writer = FastCGIResponseWriter(fileServing: configuration.fileServing, logger: logger)
        let observer = makeObserver?()
        while !threads.stopping {
            AcceptInterruption.unblock()
            let accepted = FCGX_Accept_r(&request)
            // Blocked again while a request is handled: a read interrupted
            // by the signal would break the request.
            AcceptInterruption.block()
            if accepted < 0 {
                if threads.stopping { break }
                // EMFILE and the like pass; a thread that gave up here would
                // shrink the pool for good.
                logger.error("accept failed; retrying", metadata: ["code": "\(accepted)"])
                usleep(100_000)
                continue
            }
            busy.add(1, ordering: .relaxed)
            let started = ContinuousClock.now
            let (incoming, body) = FastCGIRequestDecoder.decode(&request)
            let response = responder(incoming)
            let sent = writer.write(response, method: incoming.method, to: request.out)
            // libfcgi closes a connection gracefully: it shuts down its side,
            // then waits in poll for nginx to close, so that nginx, if still
            // sending a body, doesn't fail to write and lose the answer. Once
            // nginx has sent everything there is nothing to protect, and the
            // wait costs this thread a sleep and a wake-up per request (~15 %
            // of the CPU a health check or a download costs). A detached
            // request is closed without it.
            if request.keepConnection == 0, body.endedWithoutWaiting(descriptor: request.ipcFd) {
                FCGX_Detach(&request)
            }
            FCGX_Finish_r(&request)
            busy.subtract(1, ordering: .relaxed)
            observer?(incoming, response, RequestOutcome(bytesSent: sent, bytesReceived: incoming.body.bytesRead,
                                                         duration: ContinuousClock.now - started))
        }
        FCGX_Free(&request, 1)
    }
}

/// Starts a detached POSIX thread. Foundation's `Thread` would pull Foundation
/// into the runtime for one call.
func spawnThread(name: String, stackSize: Int = 1 << 20, _ body: @escaping @Sendable () -> Void) throws {
    final class Box { let body: @Sendable () -> Void; init(_ body: @escaping @Sendable () -> Void) { self.body = body } }
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    pthread_attr_setstacksize(&attributes, stackSize)
    pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let result = pthread_create(&thread, &attributes, { raw in
        let box = Unmanaged<AnyObject>.fromOpaque(raw!).takeRetainedValue() as! Box
        box.body()
        return nil
    }, box)
    guard result == 0 else {
        Unmanaged<AnyObject>.fromOpaque(box).release()
        throw SystemError("pthread_create \(name)", code: result)
    }
}
