import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NXCNames
import Yams

/// Walks the YAML node tree, keeping positions, and builds a `Composition`.
struct CompositionParser {
    let file: String
    let directory: String
    /// Bytes of every role's files so far (`FileLimits.total`).
    var fileBytes = 0

    init(file: String, directory: String) {
        self.file = file
        self.directory = directory
    }

    func loc(_ node: Node) -> SourceLocation {
        SourceLocation(file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
    }

    func fail(_ node: Node?, _ key: String?, _ message: String) -> CompositionError {
        CompositionError(file: file, location: node.map(loc), key: key, message)
    }

    func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let s): return s.style == .plain ? "'\(s.string)'" : "the string '\(s.string)'"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        @unknown default: return "a value"
        }
    }

    func mapping(_ node: Node, _ key: String, allowed: [String]) throws -> [(key: String, keyNode: Node, value: Node)] {
        guard case .mapping(let m) = node else {
            throw fail(node, key.isEmpty ? nil : key, "expected a mapping, got \(describe(node))")
        }
        var seen: [String: Node] = [:]
        var out: [(String, Node, Node)] = []
        for (k, v) in m {
            guard case .scalar(let ks) = k else { throw fail(k, key, "keys must be plain words") }
            let name = ks.string
            let path = key.isEmpty ? name : "\(key).\(name)"
            if !allowed.isEmpty && !allowed.contains(name) {
                let hint = Suggestion.hint(name, among: allowed)
                throw fail(k, path, "unknown key '\(name)'" + (hint.isEmpty ? "; expected one of: " : hint + " (expected one of: ")
                                    + allowed.joined(separator: ", ") + (hint.isEmpty ? "" : ")"))
            }
            if let first = seen[name] {
                throw fail(k, path, "duplicate key '\(name)' (first at line \(first.mark?.line ?? 0))")
            }
            seen[name] = k
            out.append((name, k, v))
        }
        return out
    }

    func string(_ node: Node, _ key: String) throws -> String {
        guard case .scalar(let s) = node else { throw fail(node, key, "expected a string, got \(describe(node))") }
        if s.style == .plain && (s.string == "~" || s.string == "null" || s.string.isEmpty) {
            throw fail(node, key, "expected a string, got nothing")
        }
        return s.string
    }

    func int(_ node: Node, _ key: String) throws -> Int {
        guard case .scalar(let s) = node, s.style == .plain, let v = Int(s.string) else {
            throw fail(node, key, "expected an integer, got \(describe(node))")
        }
        return v
    }

    func stringList(_ node: Node, _ key: String) throws -> [Located<String>] {
        guard case .sequence(let seq) = node else {
            throw fail(node, key, "expected a list of strings, got \(describe(node))")
        }
        var out: [Located<String>] = []
        for (i, item) in seq.enumerated() {
            let k = "\(key)[\(i)]"
            out.append(Located(try string(item, k), at: loc(item), key: k))
        }
        return out
    }

    mutating func parse(_ text: String, defaultName: String) throws -> Composition {
        let root: Node
        do {
            guard let n = try YAMLLimits.composition.compose(text, file: file) else {
                throw CompositionError(file: file, "the composition is empty; expected a mapping with 'roles:'")
            }
            root = n
        } catch let e as YamlError {
            throw yamlError(e)
        } catch let e as YAMLLimitError {
            throw CompositionError(file: file, location: e.line > 0 ? SourceLocation(file: file, line: e.line, column: e.column) : nil,
                                   e.message)
        }
        var name = defaultName
        var nameNode: Node?
        var distribution = Distribution()
        var packages: [Located<String>] = []
        var roles: [Role] = []
        var rolesSeen = false
        var test: String?
        for (k, keyNode, v) in try mapping(root, "", allowed: ["name", "description", "distribution", "packages", "roles", "test"]) {
            switch k {
            case "name": name = try string(v, k); nameNode = v
            case "description": _ = try string(v, k)
            case "distribution": distribution = try parseDistribution(v)
            case "packages": packages = try parsePackages(v, k)
            case "roles": roles = try parseRoles(v, keyNode); rolesSeen = true
            case "test": test = try string(v, k)
            default: break
            }
        }
        guard rolesSeen else { throw fail(root, "roles", "missing key 'roles': a composition needs at least one role") }
        if !isHostname(name) {
            throw fail(nameNode ?? root, "name", "'\(name)' is not a valid composition name (lowercase letters, digits and '-', starting with a letter or digit)")
        }
        // Host names of all roles must be distinct (`client` count 2 and a role `client1` collide).
        var hosts: [String: String] = [:]
        for role in roles {
            for h in role.hostNames() {
                if let other = hosts[h] {
                    throw CompositionError(file: file, location: role.location, key: "roles.\(role.name)",
                                           "host name '\(h)' of role '\(role.name)' collides with a host of role '\(other)'; rename a role or change its count")
                }
                hosts[h] = role.name
            }
        }
        return Composition(name: name, file: file, distribution: distribution, packages: packages, roles: roles, test: test)
    }

    func yamlError(_ e: YamlError) -> CompositionError {
        let (location, message) = describeYAMLError(e, file: file)
        return CompositionError(file: file, location: location, message)
    }

    func parseDistribution(_ node: Node) throws -> Distribution {
        var d = Distribution()
        for (k, _, v) in try mapping(node, "distribution", allowed: ["suite", "mirror", "components", "architecture"]) {
            let key = "distribution.\(k)"
            switch k {
            case "suite":
                d.suite = try source(v, key, DebianSource.validateSuite)
            case "mirror":
                d.mirror = try source(v, key, DebianSource.validateMirror)
            case "components":
                let list = try stringList(v, key)
                guard !list.isEmpty else { throw fail(v, key, "expected at least one component (e.g. [main])") }
                for c in list {
                    do { try DebianSource.validateComponent(c.value) } catch {
                        throw CompositionError(file: file, location: c.location, key: c.key, error.message)
                    }
                }
                d.components = list.map(\.value)
            case "architecture":
                d.architecture = try source(v, key, DebianSource.validateArchitecture)
                guard d.architecture == "amd64" else {
                    throw fail(v, key, "only amd64 is supported, got '\(d.architecture)'")
                }
            default: break
            }
        }
        return d
    }

    /// A string that becomes part of the package sources, checked by its `DebianSource` rule.
    func source(_ node: Node, _ key: String, _ rule: (String) throws(DebianSource.Invalid) -> Void) throws -> String {
        let value = try string(node, key)
        do { try rule(value) } catch { throw fail(node, key, error.message) }
        return value
    }

    func parsePackages(_ node: Node, _ key: String) throws -> [Located<String>] {
        let list = try stringList(node, key)
        for p in list where !isPackageName(p.value) {
            throw CompositionError(file: file, location: p.location, key: p.key,
                                   "'\(p.value)' is not a Debian package name (lowercase letters, digits, '+', '-', '.')")
        }
        return list
    }
}
