import Foundation
import GRDB
import MinihostTesting
import Testing
@testable import Store

/// Expiry and download limits: counted atomically, ended at once, swept after a grace.
@Suite struct LimitsTests {
    private func limitedUpload(_ fixture: TemporaryStore, maxDownloads: Int?, expiresAt: Date? = nil,
                               bytes: String = "limited") throws -> Upload {
        let writer = try fixture.store.blobs.makeWriter()
        try Array(bytes.utf8).withUnsafeBytes { try writer.write($0) }
        return try fixture.store.commitUpload(try writer.finish(), owner: .apiClient("app"), fileName: "f.bin",
                                              contentType: "application/octet-stream") { upload in
            upload.maxDownloads = maxDownloads
            upload.expiresAt = expiresAt
        }
    }

    @Test func concurrentClaimsGrantExactlyTheDownloadsLeft() throws {
        let fixture = try TemporaryStore()
        let upload = try limitedUpload(fixture, maxDownloads: 5)
        let outcomes = LockedList<DownloadClaim>()
        DispatchQueue.concurrentPerform(iterations: 50) { _ in
            outcomes.append((try? fixture.store.claimDownload(uploadId: upload.id)) ?? .notFound)
        }
        let granted = outcomes.values.filter { if case .granted = $0 { return true } else { return false } }
        #expect(granted.count == 5)
        #expect(outcomes.values.filter { $0 == .exhausted }.count == 45)
        let stored = try #require(try fixture.store.upload(id: upload.id, owner: .apiClient("app")))
        #expect(stored.downloadCount == 5 && stored.isExhausted && stored.expiresAt != nil)
    }

    @Test func anExpiredUploadIsRefusedBeforeAnySweep() throws {
        let fixture = try TemporaryStore()
        let now = Date()
        let upload = try limitedUpload(fixture, maxDownloads: nil, expiresAt: now.addingTimeInterval(10))
        guard case .granted = try fixture.store.claimDownload(uploadId: upload.id, now: now) else {
            Issue.record("not granted before expiry"); return
        }
        #expect(try fixture.store.claimDownload(uploadId: upload.id, now: now.addingTimeInterval(10.01)) == .expired)
        #expect(try fixture.store.claimDownload(uploadId: "nope") == .notFound)
    }

    @Test func theSweepPurgesEndedUploadsOnlyAfterTheGrace() throws {
        let fixture = try TemporaryStore()
        let exhausted = try limitedUpload(fixture, maxDownloads: 1, bytes: "once")
        let keeps = try limitedUpload(fixture, maxDownloads: 3, bytes: "thrice")
        let now = Date()
        _ = try fixture.store.claimDownload(uploadId: exhausted.id, now: now)
        _ = try fixture.store.claimDownload(uploadId: keeps.id, now: now)
        // The last download may still be on its way out of nginx: the blob stays.
        #expect(try fixture.store.purgeEnded(now: now.addingTimeInterval(1)) == 0)
        #expect(FileManager.default.fileExists(atPath: fixture.store.blobs.path(for: exhausted.sha256)))
        #expect(try fixture.store.purgeEnded(now: now.addingTimeInterval(MinihostStore.endedGrace + 1)) == 1)
        #expect(try fixture.store.upload(id: exhausted.id, owner: .apiClient("app"))?.state == .purged)
        #expect(!FileManager.default.fileExists(atPath: fixture.store.blobs.path(for: exhausted.sha256)))
        #expect(try fixture.store.upload(id: keeps.id, owner: .apiClient("app"))?.state == .ready)
        let report = try fixture.store.collectGarbage()
        #expect(report.uploadsEnded == 0)
    }
}
