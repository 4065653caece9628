/// A route's path: literal segments, `:name` parameters (one non-empty
/// segment, optionally constrained) and, last, `*name` catching the rest of
/// the path, slashes included (S3 and s4 keys).
///
/// Paths are matched exactly: the segments after the leading `/`, empty ones
/// kept, so `/x/` and `/x//y` never match `/x` or `/x/y`. nginx matched its
/// location on the same decoded, slash-merged path the router sees, so a path
/// that reaches a handler is always one its location's limits applied to.
public struct PathPattern: Sendable, Hashable, CustomStringConvertible {
    public enum Segment: Sendable, Hashable {
        case literal(String)
        case parameter(String, ParameterConstraint)
        case catchAll(String)
    }

    public let segments: [Segment]
    public let text: String

    /// Parses `/a/:b/*c`. A parameter may name a constraint registered with
    /// it: `:id` takes any segment, ``init(_:constraints:)`` adds others.
    public init(_ text: String, constraints: [String: ParameterConstraint] = [:]) {
        precondition(text.hasPrefix("/"), "route paths start with /: \(text)")
        self.text = text
        let parts = text.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        segments = parts.enumerated().map { index, part in
            if part.hasPrefix(":") {
                let name = String(part.dropFirst())
                return .parameter(name, constraints[name] ?? .anySegment)
            }
            if part.hasPrefix("*") {
                precondition(index == parts.count - 1, "a catch-all must be the last segment: \(text)")
                return .catchAll(String(part.dropFirst()))
            }
            // Only the last may be empty: a trailing slash (`/local/files/:id/`).
            precondition(!part.isEmpty || index == parts.count - 1, "empty segment in route path \(text)")
            return .literal(String(part))
        }
    }

    public var description: String { text }

    /// True when every segment is literal (nginx: `location = …`).
    public var isLiteral: Bool {
        segments.allSatisfy { if case .literal = $0 { return true } else { return false } }
    }

    /// Whether some path could match both patterns. Conservative: true
    /// unless a segment proves them apart (two different literals, a literal
    /// its parameter refuses, or different lengths with no catch-all).
    func mayOverlap(_ other: PathPattern) -> Bool {
        for (mine, theirs) in zip(segments, other.segments) {
            switch (mine, theirs) {
            case (.catchAll, _), (_, .catchAll): return true
            case (.literal(let a), .literal(let b)) where a != b: return false
            case (.literal(let text), .parameter(_, let constraint)),
                 (.parameter(_, let constraint), .literal(let text)):
                if !constraint.matches(text[...]) { return false }
            default: continue
            }
        }
        // A catch-all at the end of the longer one takes one segment or more.
        if segments.count == other.segments.count { return true }
        let (shorter, longer) = segments.count < other.segments.count ? (self, other) : (other, self)
        if case .catchAll? = shorter.segments.last { return longer.segments.count > shorter.segments.count }
        return false
    }

    /// Two patterns no precedence rule tells apart: the same segments, with
    /// parameters and catch-alls in the same places whatever their names.
    func sameShape(as other: PathPattern) -> Bool {
        guard segments.count == other.segments.count else { return false }
        return zip(segments, other.segments).allSatisfy { pair in
            switch pair {
            case (.literal(let a), .literal(let b)): return a == b
            case (.parameter, .parameter): return true  // constraints can't be proved disjoint
            case (.catchAll, .catchAll): return true
            default: return false
            }
        }
    }

    /// The anchored regular expression nginx matches this path with.
    public var nginxRegex: String { nginxRegex(capturing: nil) }

    /// The same, with parameter `capture.parameter` captured as nginx variable `capture.variable`.
    func nginxRegex(capturing capture: (parameter: String, variable: String)?) -> String {
        "^/" + segments.map { segment in
            switch segment {
            case .literal(let text): return Self.escape(text)
            case .parameter(let name, let constraint):
                return name == capture?.parameter ? constraint.capturingRegex(capture!.variable) : constraint.regex
            case .catchAll: return ".+"
            }
        }.joined(separator: "/") + "$"
    }

    /// The path with each parameter replaced by its value in `values` (for
    /// requests a server makes to its own routes).
    func path(with values: [String: String]) -> String {
        "/" + segments.map { segment in
            switch segment {
            case .literal(let text): return text
            case .parameter(let name, _), .catchAll(let name): return values[name] ?? ""
            }
        }.joined(separator: "/")
    }

    /// A path this pattern matches, with each parameter filled by `sample`
    /// (one no route spells as a literal).
    public func example(_ sample: String = "p4r4m") -> String {
        "/" + segments.map { segment in
            switch segment {
            case .literal(let text): return text
            case .parameter(_, let constraint): return constraint.example ?? sample
            case .catchAll: return sample + "/" + sample
            }
        }.joined(separator: "/")
    }

    private static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            if ".^$*+?()[]{}|\\".contains(character) { out.append("\\") }
            out.append(character)
        }
        return out
    }
}

/// What one path segment may be, for a parameter: checked by the router and
/// written into the nginx location, so neither sees a path the other refuses.
public struct ParameterConstraint: Sendable, Hashable {
    /// The segment as nginx matches it (no anchors, no `/`).
    public var regex: String { bodyRegex + (allowsExtension ? Self.extensionRegex : "") }
    /// The part before an optional extension.
    let bodyRegex: String
    /// A segment that satisfies it, for tests and config checks.
    public let example: String?
    let allowedBytes: ByteSet?
    let lengths: ClosedRange<Int>
    /// An optional `.ext` (1-16 letters or digits) after the constrained part.
    let allowsExtension: Bool

    /// Any non-empty segment.
    public static let anySegment = ParameterConstraint(bodyRegex: "[^/]+", example: nil, allowedBytes: nil,
                                                       lengths: 1...Int.max, allowsExtension: false)

    static let extensionRegex = "(?:\\.[A-Za-z0-9]{1,16})?"

    /// `regex` with the part before the extension captured as nginx variable `name`.
    func capturingRegex(_ name: String) -> String {
        "(?<\(name)>\(bodyRegex))" + (allowsExtension ? Self.extensionRegex : "")
    }

    /// Only characters and lengths ``PublicTree`` names its links with.
    var isPublicTreeName: Bool {
        guard let allowedBytes, lengths.upperBound <= 64 else { return false }
        return (0..<128).allSatisfy { byte in !allowedBytes.contains(UInt8(byte)) || ByteSet.publicTreeName.contains(UInt8(byte)) }
    }

    /// `count...count` characters from `characters`, optionally followed by an extension.
    public static func characters(_ characters: String, count: ClosedRange<Int>, extension allowsExtension: Bool = false,
                                  regexClass: String, example: String) -> ParameterConstraint {
        let quantity = count.lowerBound == count.upperBound ? "{\(count.lowerBound)}" : "{\(count.lowerBound),\(count.upperBound)}"
        return ParameterConstraint(bodyRegex: "[\(regexClass)]\(quantity)", example: example, allowedBytes: ByteSet(characters),
                                   lengths: count, allowsExtension: allowsExtension)
    }

    func matches(_ segment: Substring) -> Bool {
        guard !segment.isEmpty else { return false }
        guard let allowedBytes else { return true }
        var body = segment.utf8[...]
        if allowsExtension, let dot = body.firstIndex(of: UInt8(ascii: ".")) {
            let suffix = body[body.index(after: dot)...]
            guard (1...16).contains(suffix.count), suffix.allSatisfy(ByteSet.alphanumerics.contains) else { return false }
            body = body[..<dot]
        }
        return lengths.contains(body.count) && body.allSatisfy(allowedBytes.contains)
    }

    public static func == (lhs: ParameterConstraint, rhs: ParameterConstraint) -> Bool { lhs.regex == rhs.regex }
    public func hash(into hasher: inout Hasher) { hasher.combine(regex) }
}

/// A set of ASCII bytes, for constraint checks without regular expressions.
struct ByteSet: Sendable, Hashable {
    private var bits: (UInt64, UInt64) = (0, 0)

    init(_ characters: String) {
        for byte in characters.utf8 where byte < 128 {
            if byte < 64 { bits.0 |= 1 << UInt64(byte) } else { bits.1 |= 1 << UInt64(byte - 64) }
        }
    }

    func contains(_ byte: UInt8) -> Bool {
        guard byte < 128 else { return false }
        return byte < 64 ? bits.0 & (1 << UInt64(byte)) != 0 : bits.1 & (1 << UInt64(byte - 64)) != 0
    }

    static let alphanumerics = ByteSet("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
    static let publicTreeName = ByteSet("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")

    static func == (lhs: ByteSet, rhs: ByteSet) -> Bool { lhs.bits == rhs.bits }
    func hash(into hasher: inout Hasher) { hasher.combine(bits.0); hasher.combine(bits.1) }
}
