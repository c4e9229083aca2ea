import Foundation
import NXCComposition
import NXCNames
import Yams

/// Reading a lock: every key checked, errors with the file, line and key.
extension LockFile {
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
}
