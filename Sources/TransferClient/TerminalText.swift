/// Text from elsewhere (a file name, a server's answer) made safe to show a
/// person: file names are anyone's text, and a terminal obeys what is in them.
public enum TerminalText {
    /// `text` with every character that could steer a terminal replaced by
    /// `?`, as `ls` shows such names: C0 and C1 controls (ESC, CR, BEL, CSI
    /// and the rest), DEL, the line and paragraph separators some terminals
    /// break on, and the bidirectional marks and overrides that reorder what
    /// is shown.
    public static func safe(_ text: String) -> String {
        var safe = ""
        for character in text {
            let steers = character.unicodeScalars.contains { scalar in
                switch scalar.value {
                case 0x00...0x1F, 0x7F...0x9F, 0x200E, 0x200F, 0x2028...0x202E, 0x2066...0x2069: true
                default: false
                }
            }
            safe.append(steers ? "?" : character)
        }
        return safe
    }
}
