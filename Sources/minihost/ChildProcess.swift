import Foundation
import Glibc

/// A child process started with `posix_spawn`, with the signal mask reset:
/// the parent blocks SIGINT/SIGTERM for `sigwait`, and a child must not inherit that.
struct ChildProcess {
    let pid: pid_t

    /// Starts `executable` through `minihost child-of`, so it gets SIGTERM
    /// if this process dies without stopping it (even by SIGKILL).
    static func spawnTied(_ executable: String, _ arguments: [String], passing descriptor: Int32? = nil,
                          environment extra: [String: String] = [:]) throws -> ChildProcess {
        try spawn(CommandLine.executablePath, ["child-of", String(getpid()), "--", executable] + arguments,
                  passing: descriptor, environment: extra)
    }

    /// Starts `executable`. `passing` becomes the child's fd 3 (a listening
    /// socket, as systemd passes one); `environment` is added to this
    /// process's own.
    static func spawn(_ executable: String, _ arguments: [String], passing descriptor: Int32? = nil,
                      environment extra: [String: String] = [:]) throws -> ChildProcess {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGPIPE, SIGCHLD, SIGUSR1, SIGUSR2] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let descriptor {
            // dup2 clears close-on-exec on the copy, so only fd 3 is inherited.
            posix_spawn_file_actions_adddup2(&actions, descriptor, 3)
        }
        var environment = ProcessInfo.processInfo.environment
        for (name, value) in extra { environment[name] = value }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid = pid_t()
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard result == 0 else {
            throw CommandFailure("could not start \(executable): \(String(cString: strerror(result)))")
        }
        return ChildProcess(pid: pid)
    }

    /// The raw wait status if the child has ended, without waiting.
    func poll() -> Int32? {
        var status: Int32 = 0
        return waitpid(pid, &status, WNOHANG) == pid ? status : nil
    }

    func signal(_ signal: Int32) { kill(pid, signal) }

    /// Waits up to `timeout` seconds for the child to end; kills it after
    /// that. Returns its wait status, and whether it ended in time.
    @discardableResult
    func wait(timeout: Double) -> (status: Int32, inTime: Bool) {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let status = poll() { return (status, true) }
            usleep(20_000)
        }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return (status, false)
    }

    /// The first executable named `name` on PATH or in the sbin folders.
    static func find(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let folders = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/local/sbin", "/sbin"]
        return folders.map { $0 + "/" + name }.first { access($0, X_OK) == 0 }
    }
}

/// A wait status in words: `exit 1`, `signal 9 (Killed)`.
enum WaitStatus {
    static func exitCode(_ status: Int32) -> Int32? {
        status & 0x7f == 0 ? (status >> 8) & 0xff : nil
    }

    static func describe(_ status: Int32) -> String {
        if let code = exitCode(status) { return "exit \(code)" }
        let signal = status & 0x7f
        return "signal \(signal) (\(String(cString: strsignal(signal))))"
    }
}
