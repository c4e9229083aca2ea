/// The one place that turns argv into text for a shell (remote shells over SSH, tmux panes,
/// generated scripts). Everything else passes argv arrays.
public enum ShellQuote {
    static let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%_-+=:,./")

    public static func quote(_ s: String) -> String {
        if !s.isEmpty && s.allSatisfy({ safe.contains($0) }) { return s }
        return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    public static func join(_ argv: [String]) -> String { argv.map(quote).joined(separator: " ") }
}
