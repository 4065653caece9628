import Foundation
import HTTPCore

extension Request {
    /// The body's fields from `application/json` (an object; values turned
    /// into strings) or `application/x-www-form-urlencoded` (anything else
    /// that isn't JSON is read as a form too). 400 for malformed JSON.
    public func formFields(limit: Int = 64 * 1024) throws -> [String: String] {
        let bytes = try body.collect(upTo: limit)
        guard MediaType(contentType ?? "")?.essence == "application/json" else {
            return FormURLEncoded.parse(String(decoding: bytes, as: UTF8.self))
        }
        if bytes.isEmpty { return [:] }
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw HTTPErrorResponse(.badRequest, "Request body must be a JSON object")
        }
        var fields: [String: String] = [:]
        for (key, value) in object {
            switch value {
            case let text as String: fields[key] = text
            case is NSNull: continue
            case let number as NSNumber where [String: Any].isBoolean(number): fields[key] = number.boolValue ? "true" : "false"
            case let number as NSNumber: fields[key] = number.stringValue
            default: continue
            }
        }
        return fields
    }
}

/// How form and query values spell yes.
enum FormFlag {
    static func isTrue(_ value: String?) -> Bool {
        ["1", "true", "yes", "on"].contains((value ?? "").lowercased())
    }
}

/// Plain-text answers for curl and shell scripts.
public enum PlainTextResponse {
    public static func make(_ text: String, status: HTTPStatus = .ok) -> Response {
        var headers = HTTPHeaders()
        headers.set("Content-Type", "text/plain; charset=utf-8")
        headers.set("Cache-Control", "no-store")
        return Response(status: status, headers: headers, body: .bytes(Array((text + "\n").utf8)))
    }

    /// `ERR <message>`, the plain dialect's error body.
    @Sendable public static func error(_ status: HTTPStatus, _ message: String) -> Response {
        make("ERR \(message)", status: status)
    }
}
