/// Request ids as nginx makes them (`$request_id`, 32 hex digits), checked
/// before they reach a log line, and made here when a request came without
/// one (a FastCGI client other than the shipped nginx config).
public enum RequestId {
    /// The id of the request the calling thread is handling, for log lines
    /// written anywhere below the router (a log metadata provider reads it).
    @TaskLocal public static var current: String?

    /// `text` if it is a plausible id (1-64 of `[0-9A-Za-z_-]`), else nil.
    public static func validated(_ text: String) -> String? {
        (1...64).contains(text.utf8.count) && text.utf8.allSatisfy {
            ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 || $0 == 95
        } ? text : nil
    }

    /// 32 random hex digits, like nginx's.
    public static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        return [generator.next(), generator.next()].map { (value: UInt64) -> String in
            let digits = String(value, radix: 16)
            return String(repeating: "0", count: 16 - digits.count) + digits
        }.joined()
    }
}
