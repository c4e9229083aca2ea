/// The rules for what nxc hands to mmdebstrap and apt as a package source, and for what a lock turns
/// into apt preferences. mmdebstrap reads a mirror argument that starts with `deb ` as a whole
/// sources.list line (`deb [trusted=yes] http://…` would install unsigned packages, whose maintainer
/// scripts run as root), a newline in any of these values starts a new line of sources.list or of
/// apt preferences, and an argument that starts with `-` is read as an option: so each value is
/// held to a small character set, checked wherever it enters (composition, lock, `--mirror`, the
/// host's apt sources) and nowhere relaxed.
public enum DebianSource {
    /// Why a value is refused; the caller adds the file, line and key.
    public struct Invalid: Error, Sendable, Hashable, CustomStringConvertible {
        public var message: String
        public init(_ message: String) { self.message = message }
        public var description: String { message }
    }

    /// One `http://`, `https://` or `file:///` URL: printable ASCII without spaces, quotes, `#` or `\`.
    public static func validateMirror(_ value: String) throws(Invalid) {
        let bytes = Array(value.utf8)
        guard let scheme = ["http://", "https://", "file:///"].first(where: { value.hasPrefix($0) }) else {
            throw Invalid("expected an http://, https:// or file:// URL, got '\(shown(value))'")
        }
        guard bytes.count <= 2048 else { throw Invalid("a mirror URL is limited to 2048 characters") }
        if let bad = bytes.first(where: { !isURLByte($0) }) {
            throw Invalid("'\(shown(value))' is not a plain URL: it holds \(describe(byte: bad)); give one URL, without spaces or line breaks")
        }
        if scheme != "file:///" {
            let rest = value.dropFirst(scheme.count)
            let host = rest.prefix { $0 != "/" && $0 != "?" }
            guard !host.isEmpty, !host.hasPrefix("-") else { throw Invalid("'\(shown(value))' names no host") }
        }
    }

    /// A suite or codename: `bookworm`, `bookworm-backports`, `stable`.
    public static func validateSuite(_ value: String) throws(Invalid) {
        guard isWord(value, max: 64, extra: "._+-") else {
            throw Invalid("'\(shown(value))' is not a Debian suite name (letters, digits, '.', '_', '+', '-'; e.g. bookworm)")
        }
    }

    /// An archive component: `main`, `contrib`, `non-free-firmware`.
    public static func validateComponent(_ value: String) throws(Invalid) {
        guard isWord(value, max: 64, extra: "._+-") else {
            throw Invalid("'\(shown(value))' is not an archive component (letters, digits, '.', '_', '+', '-'; e.g. main)")
        }
    }

    /// A dpkg architecture name: `amd64`, `arm64`, `all`.
    public static func validateArchitecture(_ value: String) throws(Invalid) {
        guard isWord(value, max: 32, extra: "-"), value.utf8.allSatisfy({ !($0 >= 65 && $0 <= 90) }) else {
            throw Invalid("'\(shown(value))' is not a Debian architecture name (lowercase letters, digits, '-'; e.g. amd64)")
        }
    }

    /// A Debian version (policy 5.6.12): `[epoch:]upstream[-revision]` of letters, digits and `.+~:-`,
    /// starting with a digit, the epoch (if any) all digits.
    public static func validateVersion(_ value: String) throws(Invalid) {
        let bytes = Array(value.utf8)
        let ok = !bytes.isEmpty && bytes.count <= 256 && isDigit(bytes[0])
            && bytes.allSatisfy { isAlnum($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "~")
                || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: "-") }
            && (bytes.firstIndex(of: UInt8(ascii: ":")).map { bytes[..<$0].allSatisfy(isDigit) } ?? true)
        guard ok else {
            throw Invalid("'\(shown(value))' is not a Debian version ([epoch:]upstream[-revision]: letters, digits, '.', '+', '~', ':', '-', starting with a digit)")
        }
    }

    // MARK: characters

    static func isDigit(_ b: UInt8) -> Bool { b >= 48 && b <= 57 }
    static func isAlnum(_ b: UInt8) -> Bool { isDigit(b) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) }

    /// RFC 3986 characters apt reads as part of one URL in a sources.list line.
    static func isURLByte(_ b: UInt8) -> Bool {
        if isAlnum(b) { return true }
        return Array("-._~:/?@!$&()*+,;=%[]".utf8).contains(b)
    }

    static func isWord(_ value: String, max: Int, extra: String) -> Bool {
        let bytes = Array(value.utf8)
        let extras = Array(extra.utf8)
        guard let first = bytes.first, isAlnum(first), bytes.count <= max else { return false }
        return bytes.allSatisfy { isAlnum($0) || extras.contains($0) }
    }

    static func describe(byte: UInt8) -> String {
        switch byte {
        case 10: return "a line break"
        case 13: return "a carriage return"
        case 9: return "a tab"
        case 32: return "a space"
        case 0..<32, 127: return "a control character"
        case 128...: return "a non-ASCII character"
        default: return "'\(Character(Unicode.Scalar(byte)))'"
        }
    }

    /// The value as it can be shown in one line of an error message.
    public static func shown(_ value: String) -> String {
        var out = ""
        for scalar in value.unicodeScalars.prefix(120) {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default: out += scalar.value < 32 || scalar.value == 127 ? "\\u{\(String(scalar.value, radix: 16))}" : String(scalar)
            }
        }
        return value.unicodeScalars.count > 120 ? out + "…" : out
    }
}
