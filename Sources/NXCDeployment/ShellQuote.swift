/// The one place that turns argv into text for a shell (remote shells over SSH, tmux panes,
/// generated scripts). Everything else passes argv arrays.
public enum ShellQuote {
    static let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%_-+=:,./")

    public static func quote(_ s: String) -> String {
        if !s.isEmpty && s.allSatisfy({ safe.contains($0) }) { return s }
        return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    public static func join(_ argv: [String]) -> String { argv.map(quote).joined(separator: " ") }

    /// Text for a `#` comment of a generated script. A newline (or any control character) in a
    /// name would end the comment and make the rest of the name a command, so each becomes '?'.
    public static func comment(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.map { $0.properties.generalCategory == .control ? "?" : $0 }))
    }
}
