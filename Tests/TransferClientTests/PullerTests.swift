import Foundation
import Testing
@testable import TransferClient

@Suite struct PullerPlacementTests {
    private func folder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("puller-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func aServerNamedFileThatAppearedMeanwhileIsKept() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let partial = dir.appendingPathComponent("notes.txt.part").path, path = dir.appendingPathComponent("notes.txt").path
        try Data("downloaded".utf8).write(to: URL(fileURLWithPath: partial))
        try Data("mine".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: PushError.self) { try Puller.place(partial, at: path, replacing: false) }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "mine")
        #expect(try String(contentsOfFile: partial, encoding: .utf8) == "downloaded")
        try FileManager.default.removeItem(atPath: path)
        try Puller.place(partial, at: path, replacing: false)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "downloaded")
        #expect(!FileManager.default.fileExists(atPath: partial))
    }

    @Test func aChosenPathIsReplaced() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let partial = dir.appendingPathComponent("x.part").path, path = dir.appendingPathComponent("x").path
        try Data("new".utf8).write(to: URL(fileURLWithPath: partial))
        try Data("old".utf8).write(to: URL(fileURLWithPath: path))
        try Puller.place(partial, at: path, replacing: true)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "new")
        #expect(!FileManager.default.fileExists(atPath: partial))
    }

    @Test func anErrorQuotingAServerCannotSteerTheTerminal() {
        #expect(PushError("refused: 400 \u{1B}[2Jgone").description == "refused: 400 ?[2Jgone")
    }
}
