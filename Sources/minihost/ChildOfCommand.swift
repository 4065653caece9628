import ArgumentParser
import CLinuxShims
import Foundation
import Glibc

/// `minihost child-of PID -- PROGRAM ARGS…`: runs PROGRAM so that it gets
/// SIGTERM when process PID (its parent) dies, even by SIGKILL. `up` starts
/// nginx and its workers through this, so nothing it started outlives it.
/// posix_spawn can't set the parent-death signal itself; it survives exec.
struct ChildOf: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "child-of", abstract: "Run a program that ends when its parent does (used by up).",
        shouldDisplay: false)

    @Argument(help: "The parent's pid: if it is gone already, the program isn't started.") var parent: Int32
    @Argument(parsing: .captureForPassthrough) var command: [String]

    func run() throws {
        let program = command.first == "--" ? Array(command.dropFirst()) : command
        guard let executable = program.first else { throw CommandFailure("child-of: no program given") }
        guard minihost_set_parent_death_signal(SIGTERM) == 0 else { throw CommandFailure("prctl failed") }
        // The parent may have died before the call above took effect.
        guard getppid() == parent else { throw ExitCode(1) }
        let argv = program.map { strdup($0) } + [nil]
        execv(executable, argv)
        throw CommandFailure("could not start \(executable): \(String(cString: strerror(errno)))")
    }
}
