import Foundation
import Synchronization
import Testing

@testable import FCGIApp

@Suite struct AcceptTurnTests {
    /// Which threads got the turn, in order.
    final class Log: Sendable {
        let entries = Mutex<[String]>([])
        var all: [String] { entries.withLock { $0 } }
    }

    /// Starts a thread that takes the turn and records `name` when it gets it.
    private func waitForTurn(_ turn: AcceptTurn, _ name: String, into log: Log,
                             done: DispatchGroup) -> AcceptTurn.Waiter {
        let waiter = AcceptTurn.Waiter()
        nonisolated(unsafe) let owned = waiter
        done.enter()
        Thread.detachNewThread {
            let got = turn.take(owned)
            log.entries.withLock { $0.append(got ? name : "\(name) closed") }
            done.leave()
        }
        return waiter
    }

    private func waitUntil(_ condition: () -> Bool) {
        let deadline = Date().addingTimeInterval(5)
        while !condition(), Date() < deadline { usleep(1000) }
    }

    @Test func theFirstThreadTakesTheTurnAtOnce() {
        let turn = AcceptTurn()
        #expect(turn.take(AcceptTurn.Waiter()))
        #expect(turn.waiting == 0)
    }

    @Test func theTurnGoesToTheThreadThatWentIdleLast() {
        let turn = AcceptTurn()
        #expect(turn.take(AcceptTurn.Waiter()))  // this thread is "in accept"
        let log = Log(), done = DispatchGroup()
        var waiters: [AcceptTurn.Waiter] = []
        for name in ["first", "second", "third"] {
            waiters.append(waitForTurn(turn, name, into: log, done: done))
            waitUntil { turn.waiting == waiters.count }
        }
        for expected in 1...3 {
            turn.pass()
            waitUntil { log.all.count == expected }
        }
        done.wait()
        #expect(log.all == ["third", "second", "first"])
        // The last holder passes with nobody waiting: the turn is free again.
        turn.pass()
        #expect(turn.take(AcceptTurn.Waiter()))
    }

    @Test func closeWakesEveryWaiterWithoutATurn() {
        let turn = AcceptTurn()
        #expect(turn.take(AcceptTurn.Waiter()))
        let log = Log(), done = DispatchGroup()
        var waiters: [AcceptTurn.Waiter] = []
        for name in ["a", "b"] {
            waiters.append(waitForTurn(turn, name, into: log, done: done))
            waitUntil { turn.waiting == waiters.count }
        }
        turn.close()
        #expect(done.wait(timeout: .now() + 5) == .success)
        #expect(Set(log.all) == ["a closed", "b closed"])
        #expect(!turn.take(AcceptTurn.Waiter()))
    }
}
