import HTTPCore

/// `Content-Disposition` per RFC 6266: an ASCII `filename` for old clients and
/// `filename*=UTF-8''…` with the exact name for everyone else.
public enum ContentDisposition {
    public enum Kind: String { case attachment, inline }

    public static func header(_ kind: Kind, fileName: String) -> String {
        var ascii = ""
        for scalar in fileName.unicodeScalars {
            switch scalar.value {
            case 0x20...0x7E where scalar != "\"" && scalar != "\\" && scalar != "%": ascii.unicodeScalars.append(scalar)
            default: ascii.append("_")
            }
        }
        return "\(kind.rawValue); filename=\"\(ascii)\"; filename*=UTF-8''\(FormURLEncoded.encode(fileName))"
    }
}
