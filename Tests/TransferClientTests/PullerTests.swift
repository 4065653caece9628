import Foundation
import Testing
@testable import TransferClient

@Suite struct PullerPlacementTests {
    /// A new folder holding a checked download and the file already at its path.
    private func folder(partial: String, existing: String) throws -> (dir: URL, partial: String, path: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("puller-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("notes.txt").path
        try Data(partial.utf8).write(to: URL(fileURLWithPath: path + ".part"))
        try Data(existing.utf8).write(to: URL(fileURLWithPath: path))
        return (dir, path + ".part", path)
    }

    private func text(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }

    @Test func aServerNamedFileThatAppearedMeanwhileIsKept() throws {
        let (dir, partial, path) = try folder(partial: "downloaded", existing: "mine")
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: PushError.self) { try Puller.place(partial, at: path, replacing: false) }
        #expect(try text(path) == "mine" && text(partial) == "downloaded")
        try FileManager.default.removeItem(atPath: path)
        try Puller.place(partial, at: path, replacing: false)
        #expect(try text(path) == "downloaded" && !FileManager.default.fileExists(atPath: partial))
    }

    @Test func aChosenPathIsReplaced() throws {
        let (dir, partial, path) = try folder(partial: "new", existing: "old")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Puller.place(partial, at: path, replacing: true)
        #expect(try text(path) == "new" && !FileManager.default.fileExists(atPath: partial))
    }

    @Test func anErrorQuotingAServerCannotSteerTheTerminal() {
        #expect(PushError("refused: 400 \u{1B}[2Jgone").description == "refused: 400 ?[2Jgone")
    }
}
