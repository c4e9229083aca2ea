import Foundation

/// A package installed in a root filesystem, with the SHA-256 of its .deb from the mirror's index.
public struct InstalledPackage: Sendable, Hashable {
    public var name: String
    public var version: String
    public var architecture: String
    public var sha256: String

    public init(name: String, version: String, architecture: String, sha256: String) {
        self.name = name
        self.version = version
        self.architecture = architecture
        self.sha256 = sha256
    }
}

/// Reading dpkg's and apt's records in a root filesystem.
public enum DebianRecords {
    /// Stanzas of a deb822 file (dpkg status, Packages index): only the wanted fields, fast.
    public static func stanzas(_ data: Data, fields: Set<String>) -> [[String: String]] {
        var out: [[String: String]] = []
        var cur: [String: String] = [:]
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let b = raw.bindMemory(to: UInt8.self)
            var i = 0
            let n = b.count
            while i <= n {
                var j = i
                while j < n && b[j] != 10 { j += 1 }
                if j == i {
                    if !cur.isEmpty { out.append(cur); cur = [:] }
                } else if b[i] != 32 && b[i] != 9 {
                    // "Field: value"
                    var c = i
                    while c < j && b[c] != 58 { c += 1 }
                    if c < j {
                        let name = String(decoding: UnsafeBufferPointer(rebasing: b[i..<c]), as: UTF8.self)
                        if fields.contains(name) {
                            var v = c + 1
                            while v < j && b[v] == 32 { v += 1 }
                            cur[name] = String(decoding: UnsafeBufferPointer(rebasing: b[v..<j]), as: UTF8.self)
                        }
                    }
                }
                i = j + 1
            }
        }
        if !cur.isEmpty { out.append(cur) }
        return out
    }

    /// Packages dpkg has installed in `root`: name, version, architecture (sha256 empty).
    public static func installed(root: String) throws -> [InstalledPackage] {
        let path = root + "/var/lib/dpkg/status"
        guard let data = FileManager.default.contents(atPath: path) else { throw BuildError.file("read", path: path, reason: "cannot open it") }
        return stanzas(data, fields: ["Package", "Version", "Architecture", "Status"]).compactMap { s in
            guard let n = s["Package"], let v = s["Version"], let a = s["Architecture"],
                  s["Status"]?.hasSuffix(" installed") == true else { return nil }
            return InstalledPackage(name: n, version: v, architecture: a, sha256: "")
        }.sorted { $0.name < $1.name }
    }

    /// SHA-256 of each .deb in the mirror indexes apt left in `root` (`name version arch` → hash),
    /// and the date of the newest Release file (ISO 8601, UTC).
    public static func index(root: String) -> (sha: [String: String], date: String?) {
        let dir = root + "/var/lib/apt/lists"
        var sha: [String: String] = [:]
        var date: Date?
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        for n in names.sorted() {
            if n.hasSuffix("_Packages"), let data = FileManager.default.contents(atPath: dir + "/" + n) {
                for s in stanzas(data, fields: ["Package", "Version", "Architecture", "SHA256"]) {
                    if let p = s["Package"], let v = s["Version"], let a = s["Architecture"], let h = s["SHA256"] {
                        sha["\(p) \(v) \(a)"] = h
                    }
                }
            } else if n.hasSuffix("InRelease") || n.hasSuffix("_Release"),
                      let data = FileManager.default.contents(atPath: dir + "/" + n),
                      let d = stanzas(data.prefix(4096), fields: ["Date"]).first?["Date"] {
                let f = DateFormatter()
                f.locale = Locale(identifier: "en_US_POSIX")
                f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
                if let parsed = f.date(from: d), parsed > (date ?? .distantPast) { date = parsed }
            }
        }
        let iso = date.map { d -> String in
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.timeZone = TimeZone(identifier: "UTC")
            f.dateFormat = "yyyy-MM-dd'T'HH:mm:ss'Z'"
            return f.string(from: d)
        }
        return (sha, iso)
    }

    /// The indexes of several roots (layers) merged; the date is the first root's that has one.
    public static func index(roots: [String]) -> (sha: [String: String], date: String?) {
        var merged: (sha: [String: String], date: String?) = ([:], nil)
        for r in roots {
            let idx = index(root: r)
            merged.sha.merge(idx.sha) { a, _ in a }
            merged.date = merged.date ?? idx.date
        }
        return merged
    }

    /// The installed packages of `root` with the SHA-256 of their .deb files from the indexes of
    /// `root` and `lower` layers.
    public static func installedWithHashes(root: String, lower: [String] = []) throws -> (packages: [InstalledPackage], mirrorDate: String?) {
        let idx = index(roots: [root] + lower)
        var out = try installed(root: root)
        for i in out.indices {
            out[i].sha256 = idx.sha["\(out[i].name) \(out[i].version) \(out[i].architecture)"] ?? ""
        }
        return (out, idx.date)
    }
}
