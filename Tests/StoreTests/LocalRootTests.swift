import Foundation
import MinihostTesting
import Testing
@testable import Store

@Suite struct LocalRootTests {
    final class Folder {
        let path = FileManager.default.temporaryDirectory.path + "/minihost-local-\(UUID().uuidString)"
        init() throws {
            try FileManager.default.createDirectory(atPath: path + "/root", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: path + "/outside", withIntermediateDirectories: true)
            try Data("secret".utf8).write(to: URL(fileURLWithPath: path + "/outside/secret"))
        }
        deinit { try? FileManager.default.removeItem(atPath: path) }
        var root: LocalRoot { LocalRoot(id: "t", path: path + "/root") }
    }

    @Test func pathsWithDotsEmptyPartsNulOrALeadingSlashAreRefused() throws {
        for bad in ["/etc/passwd", "..", "a/../b", "./a", "a//b", "a/./b", "a\u{0}b", String(repeating: "n", count: 256)] {
            #expect(throws: StorageError.self, "\(bad)") { try LocalRoot.components(bad) }
        }
        #expect(try LocalRoot.components("a/b c/d.txt") == ["a", "b c", "d.txt"])
        #expect(try LocalRoot.components("dir/") == ["dir"])
        #expect(try LocalRoot.components("") == [])
    }

    @Test func symlinksAnywhereOnThePathAreRefused() throws {
        let folder = try Folder()
        let root = folder.root
        try FileManager.default.createSymbolicLink(atPath: root.path + "/out", withDestinationPath: folder.path + "/outside")
        try FileManager.default.createSymbolicLink(atPath: root.path + "/file", withDestinationPath: folder.path + "/outside/secret")
        for path in [["out", "secret"], ["file"], ["out"]] {
            #expect(throws: StorageError.self) { try root.entry(path) }
        }
        #expect(throws: StorageError.self) { try root.list(["out"]) }
        #expect(throws: StorageError.self) { try root.makeDirectory(["out", "x"]) }
        #expect(throws: StorageError.self) { try root.makeWriter(["out", "planted"]) }
        #expect(!FileManager.default.fileExists(atPath: folder.path + "/outside/x"))
        // Listing leaves links out; deleting a link removes only the link.
        #expect(try root.list([]).isEmpty)
        #expect(try root.delete(["out"]) == 1)
        #expect(FileManager.default.fileExists(atPath: folder.path + "/outside/secret"))
    }

    @Test func aWriterReplacesAtomicallyOnlyWhenFinished() throws {
        let folder = try Folder()
        let root = folder.root
        let first = try root.makeWriter(["d", "e", "f.txt"])
        try Array("one".utf8).withUnsafeBytes { try first.write($0) }
        #expect(try root.list(["d", "e"]).isEmpty)  // the temporary file is never listed
        try first.finish()
        let second = try root.makeWriter(["d", "e", "f.txt"])
        try Array("two!".utf8).withUnsafeBytes { try second.write($0) }
        second.abandon()
        #expect(try String(contentsOfFile: root.path + "/d/e/f.txt", encoding: .utf8) == "one")
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.path + "/d/e") == ["f.txt"])
        #expect(try root.entry(["d", "e", "f.txt"]).size == 3)
        try root.makeDirectory(["d", "e", "g"])
        #expect(try root.delete(["d"]) == 4)  // d, e, f.txt, g
        #expect(try root.list([]).isEmpty)
    }
}
