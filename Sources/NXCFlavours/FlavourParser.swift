import Foundation
import NXCComposition
import NXCNames
import Yams

/// Walks the YAML node tree of a flavour file, keeping positions, and builds a `Flavour`.
struct FlavourParser {
    let file: String
    let names: FlavourNames

    /// The keys every flavour file may give; its artefact kind's and start method's own keys come on
    /// top (`FlavourNames.kindSettings`, `.methodSettings`).
    static let keys = ["name", "description", "artefact", "start", "packages", "kernel_params", "components", "mask",
                       "files", "links", "boot_timeout", "default"]

    func loc(_ node: Node) -> SourceLocation {
        SourceLocation(file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
    }

    func fail(_ node: Node?, _ key: String?, _ message: String) -> FlavourError {
        FlavourError(file: file, location: node.map(loc), key: key, message)
    }

    func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let s):
            let shown = "'\(FlavourRules.printable(s.string))'"
            return s.style == .plain ? shown : "the string \(shown)"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        @unknown default: return "a value"
        }
    }

    /// "; did you mean 'x'?" for a near word, else the whole list.
    static func nearest(_ word: String, _ known: [String]) -> String {
        let hint = Suggestion.hint(word, among: known)
        return hint.isEmpty ? "; expected one of: \(known.joined(separator: ", "))" : hint
    }

    func isNull(_ node: Node) -> Bool {
        guard case .scalar(let s) = node, s.style == .plain else { return false }
        return s.string.isEmpty || s.string == "~" || s.string == "null"
    }

    /// The file's base name without `.yaml`: what `name:` must say, so that `-f NAME` and the
    /// build folder agree with the file that was read.
    var expectedName: String? {
        let base = (file as NSString).lastPathComponent
        return base.hasSuffix(".yaml") ? String(base.dropLast(".yaml".count)) : nil
    }

    func mapping(_ node: Node, _ key: String, allowed: [String]) throws -> [(key: String, keyNode: Node, value: Node)] {
        guard case .mapping(let m) = node else {
            throw fail(node, key.isEmpty ? nil : key, "expected a mapping, got \(describe(node))")
        }
        guard m.count <= FlavourRules.maxEntries else {
            throw fail(node, key.isEmpty ? nil : key, "more than \(FlavourRules.maxEntries) entries")
        }
        var seen: [String: Node] = [:]
        var out: [(String, Node, Node)] = []
        for (k, v) in m {
            guard case .scalar(let ks) = k else { throw fail(k, key.isEmpty ? nil : key, "keys must be plain words or paths") }
            let name = ks.string
            let path = key.isEmpty ? name : "\(key).\(name)"
            if !allowed.isEmpty && !allowed.contains(name) {
                throw fail(k, key.isEmpty ? FlavourRules.printable(name) : "\(key).\(FlavourRules.printable(name))",
                           "unknown key '\(FlavourRules.printable(name))'\(Self.nearest(name, allowed))")
            }
            if let first = seen[name] {
                throw fail(k, FlavourRules.printable(path), "duplicate key (first at line \(first.mark?.line ?? 0))")
            }
            seen[name] = k
            out.append((name, k, v))
        }
        return out
    }

    func string(_ node: Node, _ key: String) throws -> String {
        guard case .scalar(let s) = node else { throw fail(node, key, "expected a string, got \(describe(node))") }
        if isNull(node) { throw fail(node, key, "expected a string, got nothing") }
        return s.string
    }

    func stringList(_ node: Node, _ key: String) throws -> [(value: String, node: Node, key: String)] {
        if isNull(node) { return [] }
        guard case .sequence(let seq) = node else {
            throw fail(node, key, "expected a list of strings, got \(describe(node))")
        }
        guard seq.count <= FlavourRules.maxEntries else { throw fail(node, key, "more than \(FlavourRules.maxEntries) entries") }
        var out: [(String, Node, String)] = []
        for (i, item) in seq.enumerated() {
            let k = "\(key)[\(i)]"
            out.append((try string(item, k), item, k))
        }
        return out
    }

    /// A list whose every item passes `check`.
    func checkedList(_ node: Node, _ key: String, _ what: String, _ check: (String) -> String?) throws -> [String] {
        let list = try stringList(node, key)
        for item in list {
            if let why = check(item.value) {
                throw fail(item.node, item.key, "\(what) '\(FlavourRules.printable(item.value))' \(why)")
            }
        }
        return list.map(\.value)
    }

    /// `true` or `false`, plain (a quoted "true" is a string).
    func bool(_ node: Node, _ key: String) throws -> Bool {
        guard case .scalar(let s) = node, s.style == .plain, let b = Bool.construct(from: s) else {
            throw fail(node, key, "expected true or false, got \(describe(node))")
        }
        return b
    }

    func int(_ node: Node, _ key: String, in range: ClosedRange<Int>, unit: String) throws -> Int {
        guard case .scalar(let s) = node, s.style == .plain, let v = Int(s.string), range.contains(v) else {
            throw fail(node, key, "expected a whole number of \(unit) from \(range.lowerBound) to \(range.upperBound), got \(describe(node))")
        }
        return v
    }

    /// MiB, as a composition's `memory:`: `1024`, `512M`, `2G`.
    func memory(_ node: Node, _ key: String) throws -> Int {
        let r = FlavourRules.memory
        let why = "expected a size from \(r.lowerBound)M to \(r.upperBound / 1024)G such as 1024 (MiB), 512M or 2G, got \(describe(node))"
        guard case .scalar(let s) = node else { throw fail(node, key, why) }
        guard let m = parseMemorySize(s.string), r.contains(m) else { throw fail(node, key, why) }
        return m
    }

    func yamlError(_ e: YamlError) -> FlavourError {
        let (location, message) = describeYAMLError(e, file: file)
        return FlavourError(file: file, location: location, message)
    }
}
