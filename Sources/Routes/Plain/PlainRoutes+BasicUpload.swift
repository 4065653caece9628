import Foundation
import HTTPCore
import Store

extension PlainRoutes {
    /// `POST /api/basicHTMLUpload`: multipart `username`, `password`, `file`
    /// and optional `folderId` in one request; answers the links as text.
    /// The fields may follow the file, so the file is streamed to a temporary
    /// blob first and dropped if the credentials or quota refuse it.
    func basicUpload(_ request: Request) throws -> Response {
        let received = try FileUploadReceiver(store: store, maxBytes: context.configuration.maxUploadBytes)
            .receive(request, tooLarge: HTTPErrorResponse(.payloadTooLarge, "File too large"))
        do {
            guard let credential = try credential(received.fields) else {
                throw HTTPErrorResponse(.unauthorized, "Invalid credentials")
            }
            let folder = try targetFolder(credential, received.fields["folderId"])
            let user = credential.user
            let upload = try store.commitUpload(
                received.blob, owner: user.owner, fileName: received.fileName,
                contentType: received.contentType == "application/octet-stream"
                    ? MediaTypeGuess.forFileName(received.fileName) : received.contentType,
                quotaBytes: user.quotaBytes) { upload in
                    upload.publicId = try Self.newPublicId()
                    upload.folderId = folder.id
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
