import Foundation
import HTTPCore

/// JSON bodies in and out.
public enum JSONResponse {
    /// A JSON answer from Foundation objects (dictionaries, arrays, strings,
    /// numbers, `NSNull`). Keys are sorted so answers are stable.
    public static func make(_ object: Any, status: HTTPStatus = .ok, headers: HTTPHeaders = HTTPHeaders()) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data(#"{"error":"Internal server error"}"#.utf8)
        var headers = headers
        headers.set("Content-Type", "application/json; charset=utf-8")
        return Response(status: status, headers: headers, body: .bytes(Array(data)))
    }

    /// `{"error": message}` with `status`.
    @Sendable public static func error(_ status: HTTPStatus, _ message: String) -> Response {
        var response = make(["error": message], status: status)
        response.headers.set("Cache-Control", "no-store")
        return response
    }
}

extension Request {
    /// The body parsed as a JSON object; 400 when it isn't one, 413 past `limit`.
    public func jsonObject(limit: Int = 1 << 20) throws -> [String: Any] {
        let bytes = try body.collect(upTo: limit)
        guard !bytes.isEmpty else { throw HTTPErrorResponse(.badRequest, "Request body must be a JSON object") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]),
              let dictionary = object as? [String: Any] else {
            throw HTTPErrorResponse(.badRequest, "Request body must be a JSON object")
        }
        return dictionary
    }

    /// Like ``jsonObject(limit:)`` but an empty body is an empty object.
    public func optionalJSONObject(limit: Int = 1 << 20) throws -> [String: Any] {
        let bytes = try body.collect(upTo: limit)
        if bytes.allSatisfy({ $0 == 32 || $0 == 10 || $0 == 13 || $0 == 9 }) { return [:] }
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)), let dictionary = object as? [String: Any] else {
            throw HTTPErrorResponse(.badRequest, "Request body must be a JSON object")
        }
        return dictionary
    }
}

/// Reading typed values out of a parsed JSON object with clear 400s.
extension Dictionary where Key == String, Value == Any {
    /// The first of `names` present as a non-empty string; 400 if present with another type.
    func string(_ names: String...) throws -> String? {
        for name in names {
            guard let value = self[name], !(value is NSNull) else { continue }
            guard let text = value as? String else { throw HTTPErrorResponse(.badRequest, "\(name) must be a string") }
            return text
        }
        return nil
    }

    /// JSON booleans decode as NSNumber; tell them apart from numbers.
    static func isBoolean(_ value: Any) -> Bool {
        // JSONSerialization gives booleans as NSNumber of ObjC type "c" (char);
        // numbers in JSON never decode to that type.
        guard let number = value as? NSNumber else { return false }
        return String(cString: number.objCType) == "c"
    }
}
