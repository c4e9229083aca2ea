import Foundation

/// Facts about the machine running nxc that builds depend on.
public enum HostFacts {
    /// The Debian mirror the host's apt uses: the first `deb` source of deb.debian.org-like archives,
    /// from /etc/apt/sources.list(.d). Falls back to deb.debian.org.
    public static func aptMirror(root: String = "") -> String {
        let fm = FileManager.default
        var candidates: [String] = []
        var files = ["\(root)/etc/apt/sources.list"]
        if let names = try? fm.contentsOfDirectory(atPath: "\(root)/etc/apt/sources.list.d") {
            files += names.sorted().map { "\(root)/etc/apt/sources.list.d/\($0)" }
        }
        for f in files {
            guard let text = try? String(contentsOfFile: f, encoding: .utf8) else { continue }
            for raw in text.split(separator: "\n") {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line.hasPrefix("#") { continue }
                if f.hasSuffix(".sources"), line.hasPrefix("URIs:") {
                    candidates += line.dropFirst(5).split(separator: " ").map(String.init)
                } else if line.hasPrefix("deb ") {
                    let words = line.split(separator: " ").filter { !$0.hasPrefix("[") && !$0.hasSuffix("]") }
                    if words.count >= 2 { candidates.append(String(words[1])) }
                }
            }
        }
        let usable = candidates.filter { !$0.contains("security") && ($0.hasPrefix("http://") || $0.hasPrefix("https://")) }
        return usable.first ?? "http://deb.debian.org/debian"
    }

    public static var isRoot: Bool { geteuid() == 0 }
}
