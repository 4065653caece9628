import Foundation
import HTTPCore
import Store

extension PlainRoutes {
    /// `POST /api/basicHTMLUpload`: multipart `username`, `password`, `file`
    /// and optional `folderId` in one request; answers the links as text.
    ///
    /// Credentials sent before the file (as curl `-F` and browsers send form
    /// fields in order) are checked before a byte of the file is written: a
    /// wrong password stores nothing. Fields that follow the file can only be
    /// checked once it has arrived; it is dropped if they refuse it. nginx
    /// buffers this route's body, so a slow sender holds no worker thread.
    func basicUpload(_ route: RouteRequest) throws -> Response {
        let request = route.request
        var receiver = FileUploadReceiver(maxBytes: context.configuration.maxUploadBytes)
        receiver.missingFile = { HTTPErrorResponse(.badRequest, "No file uploaded") }
        var early: (AccountCredential, Folder)?
        let received = try receiver.receive(request, into: store, tooLarge: HTTPErrorResponse(.payloadTooLarge, "File too large")) { _, fields in
            guard fields["username"] != nil || fields["password"] != nil else { return }
            let credential = try route.authenticate(fields: fields) as! AccountCredential
            early = (credential, try targetFolder(credential, fields["folderId"]))
        }
        do {
            let account: AccountCredential, folder: Folder
            if let early {
                (account, folder) = early
            } else {
                let late = try route.authenticate(fields: received.fields) as! AccountCredential
                (account, folder) = (late, try targetFolder(late, received.fields["folderId"]))
            }
            let user = account.user
            let upload = try store.plainUploads.commit(
                received.blob, user: user, fileName: received.fileName,
                contentType: received.contentType == MediaType.octetStream
                    ? MediaTypeGuess.forFileName(received.fileName) : received.contentType,
                attributes: PlainUploadAttributes(folderId: folder.id)) { upload in
                    upload.publicId = try Self.newPublicId()
                }
            return PlainTextResponse.make(links(for: upload, request, withExtension: true))
        } catch let error as StorageError where error.code == .quotaExceeded {
            received.blob.discard()
            return JSONResponse.make(["error": "Storage limit exceeded",
                                      "details": "the account's quota can't hold \(received.blob.size) more bytes"],
                                     status: .payloadTooLarge)
        } catch {
            received.blob.discard()
            throw error
        }
    }
}
