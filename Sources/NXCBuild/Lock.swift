import Foundation
import NXCComposition
import NXCNames
import Yams

/// One package version a lock allows: the version, its architecture and the SHA-256 of its .deb.
public struct LockedPackage: Sendable, Hashable {
    public var version: String
    public var architecture: String
    public var sha256: String
    /// Line of the entry in the lock file (0 when not read from a file).
    public var line: Int

    public init(version: String, architecture: String, sha256: String, line: Int = 0) {
        self.version = version
        self.architecture = architecture
        self.sha256 = sha256
        self.line = line
    }

    public static func == (a: LockedPackage, b: LockedPackage) -> Bool {
        a.version == b.version && a.architecture == b.architecture && a.sha256 == b.sha256
    }

    public func hash(into h: inout Hasher) {
        h.combine(version); h.combine(architecture); h.combine(sha256)
    }
}

/// A bad lock file or a build that does not match its lock; names the file, line and key.
public struct LockError: Error, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var key: String?
    public var message: String

    public init(file: String, line: Int = 0, key: String? = nil, _ message: String) {
        self.file = file
        self.line = line
        self.key = key
        self.message = message
    }

    public var description: String {
        let place = line > 0 ? "\(file):\(line)" : file
        return "\(place): error: " + (key.map { "\($0): " } ?? "") + message
    }
}

/// `composition.lock`: the exact Debian packages a composition's images are made of, for every
/// flavour built, and the SOURCE_DATE_EPOCH of its builds. Written by the first build or
/// `nxc lock`; a build with a lock installs exactly these versions (or fails naming what the
/// mirror lacks), so two builds at different times give the same bytes.
public struct LockFile: Sendable, Equatable {
    public static let formatVersion = 1

    public var mirror: String
    /// Date of the mirror's Release file when the packages were resolved (ISO 8601, UTC).
    public var mirrorDate: String?
    public var suite: String
    public var architecture: String
    public var sourceDateEpoch: Int64
    /// Per flavour, the names of the packages its images hold.
    public var flavours: [String: [String]]
    /// Every package of every flavour.
    public var packages: [String: LockedPackage]

    public init(mirror: String, mirrorDate: String? = nil, suite: String, architecture: String, sourceDateEpoch: Int64,
                flavours: [String: [String]] = [:], packages: [String: LockedPackage] = [:]) {
        self.mirror = mirror
        self.mirrorDate = mirrorDate
        self.suite = suite
        self.architecture = architecture
        self.sourceDateEpoch = sourceDateEpoch
        self.flavours = flavours
        self.packages = packages
    }

    /// The lock beside a composition file: `composition.yaml` → `composition.lock`.
    public static func path(forComposition file: String) -> String {
        (file as NSString).deletingPathExtension + ".lock"
    }

    /// A new lock's SOURCE_DATE_EPOCH: the start of the current day (UTC), so that the builds of
    /// one day share their store entries.
    public static func todayEpoch(now: Date = Date()) -> Int64 {
        let t = Int64(now.timeIntervalSince1970)
        return t - t % 86_400
    }

    // MARK: reading

    /// Reads a lock; nil when the file does not exist. Errors name the file, line and key.
    public static func load(path: String) throws -> LockFile? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let text: String
        do { text = try YAMLLimits.lock.read(path: path) } catch let e as YAMLLimitError {
            throw LockError(file: path, e.message)
        }
        return try parse(text, file: path)
    }

    static let keys = ["lock", "mirror", "mirror_date", "suite", "architecture", "source_date_epoch", "flavours", "packages"]
    static let packageFields = ["version", "architecture", "sha256"]

    /// Parses a lock. A lock may come with a downloaded artefact (`nxc verify`): every value that
    /// reaches mmdebstrap, apt preferences or a path is checked here, by the rules compositions use.
    public static func parse(_ text: String, file: String) throws -> LockFile {
        let root: Node?
        do { root = try YAMLLimits.lock.compose(text, file: file) } catch let e as YamlError {
            throw LockError(file: file, line: yamlLine(e), "not valid YAML: \(yamlProblem(e))")
        } catch let e as YAMLLimitError {
            throw LockError(file: file, line: e.line, e.message)
        }
        guard let root, case .mapping(let top) = root else {
            throw LockError(file: file, line: 1, "a lock file is a mapping (lock, mirror, suite, architecture, packages …)")
        }
        func line(_ n: Node) -> Int { n.mark?.line ?? 0 }
        func scalar(_ n: Node, _ key: String) throws -> String {
            guard case .scalar(let s) = n, !s.string.isEmpty else { throw LockError(file: file, line: line(n), key: key, "expected a value") }
            return s.string
        }
        /// A value checked by one of the rules for package sources.
        func checked(_ n: Node, _ key: String, _ rule: (String) throws(DebianSource.Invalid) -> Void) throws -> String {
            let v = try scalar(n, key)
            do { try rule(v) } catch { throw LockError(file: file, line: line(n), key: key, error.message) }
            return v
        }
        func packageName(_ n: Node, _ key: String) throws -> String {
            let v = try scalar(n, key)
            guard isPackageName(v), v.utf8.count <= 128 else {
                throw LockError(file: file, line: line(n), key: key,
                                "'\(DebianSource.shown(v))' is not a Debian package name (lowercase letters, digits, '+', '-', '.')")
            }
            return v
        }
        /// A mapping's entries by name: keys are names, each once.
        func entries(_ m: Node.Mapping, _ key: String?) throws -> [(name: String, keyNode: Node, value: Node)] {
            var seen: [String: Int] = [:]
            return try m.map { k, v in
                let name = try scalar(k, key ?? "lock")
                if let first = seen[name] {
                    throw LockError(file: file, line: line(k), key: key.map { "\($0).\(name)" } ?? name,
                                    "duplicate key (first at line \(first))")
                }
                seen[name] = line(k)
                return (name, k, v)
            }
        }
        var values: [String: Node] = [:]
        for (name, k, v) in try entries(top, nil) {
            guard keys.contains(name) else {
                throw LockError(file: file, line: line(k), key: name,
                                "unknown key" + Suggestion.hint(name, among: keys) + "; a lock has \(keys.joined(separator: ", "))")
            }
            values[name] = v
        }
        func required(_ key: String) throws -> Node {
            guard let n = values[key] else { throw LockError(file: file, line: 1, key: key, "missing (rewrite the lock with `nxc lock --update`)") }
            return n
        }
        let versionNode = try required("lock")
        guard let v = Int(try scalar(versionNode, "lock")), v == formatVersion else {
            throw LockError(file: file, line: line(versionNode), key: "lock", "this nxc reads lock format \(formatVersion)")
        }
        let epochNode = try required("source_date_epoch")
        guard let epoch = Int64(try scalar(epochNode, "source_date_epoch")), epoch > 0 else {
            throw LockError(file: file, line: line(epochNode), key: "source_date_epoch", "expected seconds since 1970 (an integer)")
        }
        var mirrorDate: String?
        if let n = values["mirror_date"] {
            let d = try scalar(n, "mirror_date")
            guard isISODate(d) else {
                throw LockError(file: file, line: line(n), key: "mirror_date", "expected a UTC date such as 2026-07-11T10:16:37Z")
            }
            mirrorDate = d
        }
        var lock = LockFile(mirror: try checked(try required("mirror"), "mirror", DebianSource.validateMirror),
                            mirrorDate: mirrorDate,
                            suite: try checked(try required("suite"), "suite", DebianSource.validateSuite),
                            architecture: try checked(try required("architecture"), "architecture", DebianSource.validateArchitecture),
                            sourceDateEpoch: epoch)
        var flavourLines: [String: Int] = [:]
        if let f = values["flavours"] {
            guard case .mapping(let m) = f else { throw LockError(file: file, line: line(f), key: "flavours", "expected a mapping of flavour → package names") }
            for (name, k, v) in try entries(m, "flavours") {
                // Flavour names become folder names (build/<composition>/<flavour>).
                guard isHostname(name) else {
                    throw LockError(file: file, line: line(k), key: "flavours",
                                    "'\(DebianSource.shown(name))' is not a flavour name (lowercase letters, digits and '-', at most 63 characters)")
                }
                guard case .sequence(let seq) = v else {
                    throw LockError(file: file, line: line(v), key: "flavours.\(name)", "expected a list of package names")
                }
                lock.flavours[name] = try seq.map { try packageName($0, "flavours.\(name)") }
                flavourLines[name] = line(k)
            }
        }
        let pk = try required("packages")
        guard case .mapping(let pm) = pk else { throw LockError(file: file, line: line(pk), key: "packages", "expected a mapping of package → {version, architecture, sha256}") }
        for (_, k, v) in try entries(pm, "packages") {
            let name = try packageName(k, "packages")
            let key = "packages.\(name)"
            guard case .mapping(let fields) = v else {
                throw LockError(file: file, line: line(v), key: key, "expected {version, architecture, sha256}")
            }
            var got: [String: String] = [:]
            for (f, fk, fv) in try entries(fields, key) {
                guard packageFields.contains(f) else {
                    throw LockError(file: file, line: line(fk), key: "\(key).\(f)",
                                    "unknown field" + Suggestion.hint(f, among: packageFields) + "; a package has version, architecture, sha256")
                }
                switch f {
                case "version": got[f] = try checked(fv, "\(key).\(f)", DebianSource.validateVersion)
                case "architecture": got[f] = try checked(fv, "\(key).\(f)", DebianSource.validateArchitecture)
                default: got[f] = try scalar(fv, "\(key).\(f)")
                }
            }
            guard let version = got["version"], let architecture = got["architecture"], let sha = got["sha256"] else {
                let f = packageFields.first { got[$0] == nil } ?? "version"
                throw LockError(file: file, line: line(k), key: "\(key).\(f)", "missing")
            }
            guard sha.count == 64, sha.allSatisfy({ $0.isHexDigit && !$0.isUppercase && $0.isASCII }) else {
                throw LockError(file: file, line: line(k), key: "\(key).sha256", "expected 64 lowercase hex digits")
            }
            lock.packages[name] = LockedPackage(version: version, architecture: architecture, sha256: sha, line: line(k))
        }
        for (f, names) in lock.flavours.sorted(by: { $0.key < $1.key }) {
            for n in names where lock.packages[n] == nil {
                throw LockError(file: file, line: flavourLines[f] ?? 0, key: "flavours.\(f)", "names '\(n)', which has no entry under packages")
            }
        }
        return lock
    }

    static func isISODate(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard b.count == 20 else { return false }
        return b.enumerated().allSatisfy { i, c in
            switch i {
            case 4, 7: return c == UInt8(ascii: "-")
            case 10: return c == UInt8(ascii: "T")
            case 13, 16: return c == UInt8(ascii: ":")
            case 19: return c == UInt8(ascii: "Z")
            default: return c >= 48 && c <= 57
            }
        }
    }

    static func yamlLine(_ e: YamlError) -> Int {
        switch e {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): return mark.line
        default: return 0
        }
    }

    static func yamlProblem(_ e: YamlError) -> String {
        switch e {
        case .scanner(_, let problem, _, _), .parser(_, let problem, _, _), .composer(_, let problem, _, _): return problem
        case .reader(let problem, _, _, _): return problem
        default: return "\(e)"
        }
    }

    // MARK: writing

    /// The lock as YAML: one line per package, sorted, so that diffs between locks are readable.
    public func render(composition: String) -> String {
        func q(_ s: String) -> String {
            "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        var out = """
            # composition.lock of '\(composition)': the exact Debian packages of its images, written by nxc.
            # Keep it with the composition. `nxc build` installs these versions and no others;
            # `nxc lock --update` moves to the mirror's current versions and prints what changed.
            lock: \(Self.formatVersion)
            mirror: \(q(mirror))

            """
        if let d = mirrorDate { out += "mirror_date: \(q(d))\n" }
        out += "suite: \(q(suite))\narchitecture: \(q(architecture))\nsource_date_epoch: \(sourceDateEpoch)\n"
        out += "flavours:\n"
        for f in flavours.keys.sorted() {
            out += "  \(f): ["
            var column = f.count + 5
            for (i, n) in flavours[f]!.sorted().enumerated() {
                let item = (i == 0 ? "" : ", ") + n
                if i > 0, column + item.count > 99 {
                    out += ",\n    " + n
                    column = 4 + n.count
                } else {
                    out += item
                    column += item.count
                }
            }
            out += "]\n"
        }
        out += "packages:\n"
        for n in packages.keys.sorted() {
            let p = packages[n]!
            out += "  \(n): {version: \(q(p.version)), architecture: \(p.architecture), sha256: \(p.sha256)}\n"
        }
        return out
    }

    // MARK: using

    /// apt preferences holding every package at its locked version.
    public func aptPreferences(names: [String]? = nil) -> String {
        var out = "# Written by nxc from composition.lock; removed after the build.\n"
        for n in (names ?? Array(packages.keys)).sorted() {
            guard let p = packages[n] else { continue }
            out += "\nPackage: \(n)\nPin: version \(p.version)\nPin-Priority: 1001\n"
        }
        return out
    }

    /// Where to find the versions of this lock once the mirror has moved on.
    public var snapshotMirror: String {
        let stamp: String
        if let d = mirrorDate, d.count >= 19 {
            // 2026-11-26T08:12:03Z → 20261126T081203Z
            stamp = d.filter { $0.isNumber || $0 == "T" }.prefix(15) + "Z"
        } else {
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.timeZone = TimeZone(identifier: "UTC")
            f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
            stamp = f.string(from: Date(timeIntervalSince1970: TimeInterval(sourceDateEpoch + 86_399)))
        }
        return "https://snapshot.debian.org/archive/debian/\(stamp)/"
    }

    /// What changed from `old` to `self`, one line per package: `+ name version`, `- name version`,
    /// `~ name old → new`; SOURCE_DATE_EPOCH and mirror changes too.
    public func changes(from old: LockFile?) -> [String] {
        var out: [String] = []
        guard let old else { return packages.keys.sorted().map { "+ \($0) \(packages[$0]!.version)" } }
        if old.mirror != mirror { out.append("~ mirror \(old.mirror) → \(mirror)") }
        if old.suite != suite { out.append("~ suite \(old.suite) → \(suite)") }
        if old.sourceDateEpoch != sourceDateEpoch { out.append("~ source_date_epoch \(old.sourceDateEpoch) → \(sourceDateEpoch)") }
        for n in Set(old.packages.keys).union(packages.keys).sorted() {
            switch (old.packages[n], packages[n]) {
            case (nil, let b?): out.append("+ \(n) \(b.version)")
            case (let a?, nil): out.append("- \(n) \(a.version)")
            case (let a?, let b?) where a.version != b.version: out.append("~ \(n) \(a.version) → \(b.version)")
            case (let a?, let b?) where a != b: out.append("~ \(n) \(a.version): .deb sha256 \(a.sha256.prefix(12))… → \(b.sha256.prefix(12))…")
            default: break
            }
        }
        for f in Set(old.flavours.keys).union(flavours.keys).sorted() {
            if old.flavours[f] == nil { out.append("+ flavour \(f) (\(flavours[f]!.count) packages)") }
            if flavours[f] == nil { out.append("- flavour \(f)") }
        }
        return out
    }

    /// Records what a flavour's image holds, then keeps only the packages some flavour uses.
    public mutating func record(flavour: String, installed: [InstalledPackage]) {
        flavours[flavour] = installed.map(\.name).sorted()
        for p in installed {
            packages[p.name] = LockedPackage(version: p.version, architecture: p.architecture, sha256: p.sha256)
        }
        let used = Set(flavours.values.joined())
        packages = packages.filter { used.contains($0.key) }
    }
}

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
        guard let data = FileManager.default.contents(atPath: path) else { throw BuildError.invalid("cannot read \(path)") }
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
