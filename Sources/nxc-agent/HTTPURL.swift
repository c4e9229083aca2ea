import Glibc

/// `http://HOST[:PORT][/PATH]`, all the agent needs to fetch a deployment:
/// plain HTTP (no TLS), a host name, an IPv4 address or a bracketed IPv6
/// address, no user name or password. A fragment (`#...`) is dropped.
struct HTTPURL: CustomStringConvertible {
    /// The URL as given.
    let text: String
    /// Host name or address, without IPv6 brackets (what getaddrinfo takes).
    let host: String
    let port: UInt16
    /// Path and query, starting with "/" (what the request line carries).
    let path: String
    /// The Host header: the host as in the URL, with the port unless it is 80.
    let hostHeader: String

    var description: String { text }

    init(_ text: String) throws {
        self.text = text
        func bad(_ message: String) -> AgentError { .badURL(url: text, message: message) }
        // Also keeps the request line and Host header free of CR, LF and spaces.
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
            throw bad("is empty or holds a space, a control character or a non-ASCII character")
        }
        let lower = text.lowercased()
        if lower.hasPrefix("https://") { throw bad("uses TLS, which the agent does not speak: give an http:// URL") }
        guard lower.hasPrefix("http://") else { throw bad("is not an http:// URL") }
        var rest = text.dropFirst(7)  // "http://", in any case (the text is ASCII)
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        let end = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<end]
        let path = String(rest[end...])
        self.path = path.isEmpty ? "/" : path.hasPrefix("?") ? "/" + path : path
        guard !authority.contains("@") else { throw bad("holds a user name or password, which the agent does not send") }

        var hostText: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw bad("has \"[\" without \"]\"") }
            hostText = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw bad("has something other than :PORT after \"]\"") }
                portText = after.dropFirst()
            }
            guard Validate.isIPv6(String(hostText)) else { throw bad("\"[\(hostText)]\" is not an IPv6 address") }
        } else {
            if let colon = authority.firstIndex(of: ":") {
                hostText = authority[..<colon]
                portText = authority[authority.index(after: colon)...]
            } else {
                hostText = authority
            }
            guard !hostText.isEmpty else { throw bad("has no host") }
            guard Validate.isIPv4(String(hostText)) || HTTPURL.isDNSName(hostText) else {
                throw bad("host \"\(hostText)\" is neither an IPv4 address nor a host name")
            }
        }
        host = String(hostText)
        if let portText {
            guard !portText.isEmpty, portText.utf8.count <= 5,
                  portText.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                  let number = Int(portText), number >= 1, number <= 65535 else {
                throw bad("port \"\(portText)\" is not a number between 1 and 65535")
            }
            port = UInt16(number)
        } else {
            port = 80
        }
        hostHeader = (authority.hasPrefix("[") ? "[\(host)]" : host) + (port == 80 ? "" : ":\(port)")
    }

    /// Labels of letters, digits, '-' and '_' joined by dots, at most 253
    /// characters; one trailing dot (a fully qualified name) is allowed.
    private static func isDNSName(_ name: Substring) -> Bool {
        let name = name.hasSuffix(".") ? name.dropLast() : name
        guard name.utf8.count <= 253 else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && label.first != "-" && label.last != "-"
                && label.utf8.allSatisfy { byte in
                    (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                        || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                        || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                        || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
                }
        }
    }
}
