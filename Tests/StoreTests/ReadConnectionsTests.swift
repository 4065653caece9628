import Foundation
import GRDB
import MinihostTesting
import Synchronization
import Testing
@testable import Store

@Suite struct ReadConnectionsTests {
    private func readers(capacity: Int) throws -> (TemporaryStore, ReadConnections) {
        let fixture = try TemporaryStore()
        return (fixture, ReadConnections(path: fixture.root + "/minihost.sqlite", configuration: Configuration(), capacity: capacity))
    }

    /// Starts `count` threads that each read once, all of them inside a read
    /// at the same moment, and waits for them.
    private func readAllAtOnce(_ readers: ReadConnections, count: Int) -> Int {
        let inside = Atomic<Int>(0), answered = Atomic<Int>(0)
        let threads = (0..<count).map { _ in
            Thread {
                let value = try? readers.read { db -> Int in
                    inside.add(1, ordering: .relaxed)
                    while inside.load(ordering: .relaxed) < count { usleep(100) }
                    return try Int.fetchOne(db, sql: "SELECT 7") ?? 0
                }
                if value == 7 { answered.add(1, ordering: .relaxed) }
            }
        }
        threads.forEach { $0.start() }
        while threads.contains(where: { !$0.isFinished }) { usleep(1000) }
        return answered.load(ordering: .relaxed)
    }

    @Test func everyConnectionComesBackAfterReadsAtOnce() throws {
        let (fixture, readers) = try readers(capacity: 16)
        #expect(readAllAtOnce(readers, count: 6) == 6)
        #expect(readers.closeIdle() == 6)
        #expect(readers.closeIdle() == 0)
        _ = fixture
    }

    @Test func connectionsBeyondTheCapacityAreClosedWhenTheyComeBack() throws {
        let (fixture, readers) = try readers(capacity: 2)
        #expect(readAllAtOnce(readers, count: 5) == 5)
        #expect(readers.closeIdle() == 2)
        _ = fixture
    }

    @Test func manyThreadsReadingOverAndOverKeepAFewConnections() throws {
        let (fixture, readers) = try readers(capacity: 64)
        let wrong = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for round in 0..<300 {
                let value = try? readers.readSingleStatement { try Int.fetchOne(db: $0, thread * 1000 + round) }
                if value != thread * 1000 + round { wrong.add(1, ordering: .relaxed) }
            }
        }
        #expect(wrong.load(ordering: .relaxed) == 0)
        let kept = readers.closeIdle()
        #expect(kept >= 1 && kept <= 8)
        _ = fixture
    }
}

private extension Int {
    static func fetchOne(db: Database, _ value: Int) throws -> Int? {
        try Int.fetchOne(db, sql: "SELECT ?", arguments: [value])
    }
}
