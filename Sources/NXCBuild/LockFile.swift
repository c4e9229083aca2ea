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
