import Foundation
import FuzzSupport
import HTTPCore
@testable import Routes

/// JSON bodies: the size limits, the typed readers and the follow-up
/// parser. Whatever the bytes, a 400 or 413, never a crash or a body
/// accepted past its limit.
@_cdecl("FuzzJSONBody_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, fuzz)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> Int32 {
    var input = FuzzInput(data, count)
    let mode = input.byte()
    let limit = Int(input.byte()) * 8
    let bytes = input.rest
    let request = Request(method: "POST", path: "/", headers: HTTPHeaders([("Content-Type", "application/json")]),
                          body: body(bytes, chunkLimit: Int(mode) + 1))
    let object: [String: Any]
    do {
        object = mode & 1 == 0 ? try request.jsonObject(limit: limit) : try request.optionalJSONObject(limit: limit)
        require(bytes.count <= limit, "a body of \(bytes.count) bytes passed a limit of \(limit)")
    } catch let error as HTTPError {
        require([400, 413].contains(error.status.code), "unexpected status \(error.status)")
        return 0
    } catch let error as RequestBodyError {
        require(error.code == .tooLarge && bytes.count > limit, "unexpected body error \(error)")
        return 0
    } catch {
        fatalError("unexpected error type \(error)")
    }
    do {
        _ = try object.string("uploadId", "upload_id")
        let change = try FollowUpRequest.parse(object)
        if let replaced = change.appData.replacesUploadId { require(!replaced.isEmpty, "empty replacement id") }
        if let patch = change.appData.payloadPatch {
            require(JSONSerialization.isValidJSONObject(patch), "payload patch is not storable JSON")
            require(patch["_PURGE_FOR_REPLACEMENT"] == nil, "the replacement marker would be stored")
        }
    } catch let error as HTTPError {
        require(error.status.code == 400, "follow-up refusal is \(error.status)")
    } catch {
        fatalError("unexpected error type \(error)")
    }
    return 0
}
