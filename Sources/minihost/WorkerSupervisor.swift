import Foundation
import Glibc
import Logging

/// Keeps N `minihost serve` processes running on one listening socket for
/// `minihost up`.
///
/// The socket belongs to the supervisor and is passed to each worker as fd 3,
/// so it outlives a worker: while a crashed worker restarts, nginx's
/// connections wait in the socket's backlog instead of failing. A crash
/// costs the requests that process held, nothing else. Restarts are
/// budgeted: a worker that can't stay up (five exits within 30 s) makes
/// the supervisor give up, and `up` then stops nginx too rather than leave
/// it answering 503 to everything.
final class WorkerSupervisor {
    struct Budget {
        var restarts = 5
        var window: Double = 30
    }

    private let executable: String
    private let arguments: [String]
    private let socket: Int32
    private let pidFile: String
    private let logger: Logger
    private let budget: Budget
    private(set) var workers: [ChildProcess] = []
    private var recentRestarts: [Date] = []

    init(executable: String, arguments: [String], socket: Int32, count: Int, pidFile: String, logger: Logger,
         budget: Budget = Budget()) {
        self.executable = executable
        self.arguments = arguments
        self.socket = socket
        self.pidFile = pidFile
        self.logger = logger
        self.budget = budget
        workers.reserveCapacity(count)
        self.count = count
    }

    private let count: Int

    func startAll() throws {
        for _ in 0..<count { workers.append(try spawn()) }
        writePidFile()
    }

    private func spawn() throws -> ChildProcess {
        try ChildProcess.spawnTied(executable, arguments, passing: socket, environment: ["LISTEN_FDS": "1"])
    }

    enum Outcome { case notOurs, restarted, gaveUp }

    /// Reaps every worker that ended and restarts it. `gaveUp` when the
    /// restart budget is spent or a restart fails.
    func reap() -> Outcome {
        var outcome = Outcome.notOurs
        for (index, worker) in workers.enumerated() {
            guard let status = worker.poll() else { continue }
            logger.error("worker process \(worker.pid) ended (\(WaitStatus.describe(status))); restarting it")
            let now = Date()
            recentRestarts = recentRestarts.filter { now.timeIntervalSince($0) < budget.window } + [now]
            guard recentRestarts.count <= budget.restarts else {
                logger.critical("workers ended \(recentRestarts.count) times within \(Int(budget.window)) s; giving up")
                workers.remove(at: index)
                return .gaveUp
            }
            do {
                workers[index] = try spawn()
            } catch {
                logger.critical("could not restart a worker: \(error)")
                workers.remove(at: index)
                return .gaveUp
            }
            outcome = .restarted
        }
        if outcome == .restarted { writePidFile() }
        return outcome
    }

    /// Sends SIGTERM to every worker and waits for them. True if all ended
    /// with status 0 (they finished their requests within their grace period).
    func stopAll(timeout: Double) -> Bool {
        for worker in workers { worker.signal(SIGTERM) }
        var clean = true
        for worker in workers {
            let (status, inTime) = worker.wait(timeout: timeout)
            if !inTime || WaitStatus.exitCode(status) != 0 {
                logger.warning("worker process \(worker.pid) stopped uncleanly (\(inTime ? WaitStatus.describe(status) : "killed after \(Int(timeout)) s"))")
                clean = false
            }
        }
        workers = []
        try? FileManager.default.removeItem(atPath: pidFile)
        return clean
    }

    /// One pid per line, for operators and tests that need to find a worker.
    private func writePidFile() {
        let text = workers.map { String($0.pid) }.joined(separator: "\n") + "\n"
        try? text.write(toFile: pidFile, atomically: true, encoding: .utf8)
    }
}
