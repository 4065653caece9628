import Foundation
import MinihostTesting
import Testing
@testable import Store

@Suite struct PublicTreeTests {
    func linked(_ fixture: TemporaryStore, _ kind: PublicTree.Kind) -> Set<String> {
        Set(fixture.store.publicTree.links(kind).map(\.id))
    }

    @Test func publishingLinksTheBlobAndUnpublishOrPurgeRemovesTheLink() throws {
        let fixture = try TemporaryStore()
        let upload = try fixture.upload(Array("public bytes".utf8))
        let before = try fixture.store.publicGeneration()
        #expect(linked(fixture, .cache).isEmpty)
        _ = try fixture.store.setPublication(uploadId: upload.id, owner: upload.owner, status: .published)
        #expect(linked(fixture, .cache) == [upload.id])
        let link = PublicTree.Link(id: upload.id, contentType: upload.contentType)
        #expect(fixture.store.publicTree.isLinked(.cache, link, to: fixture.store.blobs.path(for: upload.sha256)))
        #expect(try fixture.store.publicGeneration() > before)
        _ = try fixture.store.setPublication(uploadId: upload.id, owner: upload.owner, status: .unpublished)
        #expect(linked(fixture, .cache).isEmpty)
        _ = try fixture.store.setPublication(uploadId: upload.id, owner: upload.owner, status: .published)
        let published = try fixture.store.publicGeneration()
        try fixture.store.purge(uploadId: upload.id, owner: upload.owner)
        #expect(linked(fixture, .cache).isEmpty)
        #expect(try fixture.store.publicGeneration() > published)
    }

    /// nginx may serve an open link for a moment after it is removed, so
    /// whatever removed one returns only after that moment.
    @Test func removingALinkReturnsOnlyAfterTheGraceNginxMayStillServeIt() throws {
        let grace = Duration.milliseconds(400)
        let fixture = try TemporaryStore(configuration: StoreConfiguration(unlinkGrace: grace))
        let first = try fixture.upload(Array("first".utf8)), second = try fixture.upload(Array("second".utf8))
        for upload in [first, second] {
            _ = try fixture.store.setPublication(uploadId: upload.id, owner: upload.owner, status: .published)
        }
        let clock = ContinuousClock()
        let unpublishing = try clock.measure {
            _ = try fixture.store.setPublication(uploadId: first.id, owner: first.owner, status: .unpublished)
        }
        #expect(unpublishing >= grace)
        let purging = try clock.measure { try fixture.store.purge(uploadId: second.id, owner: second.owner) }
        #expect(purging >= grace)
        #expect(linked(fixture, .cache).isEmpty)
        #expect(PublicTree.unlinkGrace > .seconds(PublicTree.nginxOpenFileValidity))
    }

    @Test func uploadsWithAPublicIdAreLinkedUnlessTheyCarryACondition() throws {
        let fixture = try TemporaryStore()
        func commit(_ text: String, publicId: String, _ configure: @escaping (inout Upload) -> Void = { _ in }) throws -> Upload {
            let writer = try fixture.store.blobs.makeWriter()
            try Array(text.utf8).withUnsafeBytes { try writer.write($0) }
            return try fixture.store.commitUpload(try writer.finish(), owner: Owner(kind: .user, id: "1"), fileName: "f.txt",
                                                  contentType: "text/plain") { upload in
                upload.publicId = publicId
                configure(&upload)
            }
        }
        _ = try commit("open", publicId: "openOpenOpenOpen")
        _ = try commit("expiring", publicId: "expiringExpiring") { $0.expiresAt = Date().addingTimeInterval(60) }
        _ = try commit("limited", publicId: "limitedLimitedLi") { $0.maxDownloads = 1 }
        _ = try commit("secret", publicId: "passwordPassword") { $0.passwordHash = "hash" }
        #expect(linked(fixture, .links) == ["openOpenOpenOpen"])
        #expect(try fixture.store.reconcilePublicTree() == (made: 0, removed: 0))
    }

    @Test func reconcileRemovesStrayLinksAndMakesMissingOnes() throws {
        let fixture = try TemporaryStore()
        let published = try fixture.upload(Array("published".utf8))
        let unpublished = try fixture.upload(Array("unpublished".utf8))
        _ = try fixture.store.setPublication(uploadId: published.id, owner: published.owner, status: .published)
        // A crash between the commit and the link; a link back from before a power cut.
        let tree = fixture.store.publicTree
        let publishedLink = PublicTree.Link(id: published.id, contentType: published.contentType)
        let strayLink = PublicTree.Link(id: unpublished.id, contentType: unpublished.contentType)
        unlink(tree.folder(.cache) + "/" + publishedLink.name)
        link(fixture.store.blobs.path(for: unpublished.sha256), tree.folder(.cache) + "/" + strayLink.name)
        // A link to the wrong bytes under a published id.
        link(fixture.store.blobs.path(for: unpublished.sha256), tree.folder(.cache) + "/" + publishedLink.name)
        #expect(try fixture.store.reconcilePublicTree() == (made: 1, removed: 1))
        #expect(linked(fixture, .cache) == [published.id])
        #expect(tree.isLinked(.cache, publishedLink, to: fixture.store.blobs.path(for: published.sha256)))
        #expect(try fixture.store.collectGarbage().publicLinksRepaired == 0)
    }

    @Test func anIndexIsInstalledWholeAndOldOnesGo() throws {
        let fixture = try TemporaryStore()
        let tree = fixture.store.publicTree
        #expect(tree.installedIndexStamp() == nil)
        for serial in 1...4 {
            try tree.installIndex(["a.map": "\"k\" \"\(serial)\";\n"], stamp: "stamp \(serial)")
            #expect(tree.installedIndexStamp() == "stamp \(serial)")
            #expect(try String(contentsOfFile: tree.currentIndexPath + "/a.map", encoding: .utf8) == "\"k\" \"\(serial)\";\n")
        }
        let folders = try FileManager.default.contentsOfDirectory(atPath: tree.indexFolder).filter { $0.hasPrefix("index-") }
        #expect(Set(folders) == ["index-3", "index-4"])
    }
}
