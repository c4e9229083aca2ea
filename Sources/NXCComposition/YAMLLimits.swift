import Foundation
import Yams

/// Size, nesting and alias-expansion limits for the YAML files nxc reads from others: compositions,
/// locks, role-distribution files and flavour files may all come from a downloaded artefact.
///
/// Yams composes the node tree recursively (and Swift releases it recursively), so a file nested a few
/// thousand levels deep overflows the stack before any error can be raised. Hence two steps:
/// `prescan` bounds the nesting from the text alone, with a scanner that follows libyaml's own
/// tokenising rules (quotes, comments, plain and block scalars, flow and block collections, aliases)
/// and never reports less than the real depth; only text that passes it reaches Yams. `compose` then
/// checks the exact depth and the number of values after aliases are expanded (a "billion laughs"
/// file is a few hundred bytes that expand to 10⁹ values), on the composed tree.
public struct YAMLLimits: Sendable, Hashable {
    /// What the file is, for messages: "a composition".
    public var what: String
    public var maxBytes: Int
    /// Collections inside collections: the root mapping is level 1.
    public var maxDepth: Int
    /// Values (scalars and collections) once every alias is replaced by what it names.
    public var maxNodes: Int

    public init(what: String, maxBytes: Int, maxDepth: Int = 64, maxNodes: Int) {
        self.what = what
        self.maxBytes = maxBytes
        self.maxDepth = maxDepth
        self.maxNodes = maxNodes
    }

    public static let composition = YAMLLimits(what: "a composition", maxBytes: 1 << 20, maxNodes: 1 << 20)
    public static let lock = YAMLLimits(what: "a lock file", maxBytes: 16 << 20, maxNodes: 4 << 20)
    public static let roleDistribution = YAMLLimits(what: "a role distribution file", maxBytes: 1 << 20, maxNodes: 1 << 18)
    public static let flavour = YAMLLimits(what: "a flavour file", maxBytes: 1 << 20, maxNodes: 1 << 20)

    /// The nesting the text pre-scan lets through to Yams. The scanner may count up to twice the real
    /// depth (a flow sequence may hold an implicit mapping it cannot see in advance), so this is
    /// generous enough never to refuse a file within `maxDepth`, and far below the ~5,000 levels
    /// where Yams overflows the stack.
    var prescanDepth: Int { 4 * maxDepth + 4 }

    /// Reads a file of at most `maxBytes` as UTF-8 text: refuses what is not a regular file (a FIFO or
    /// /dev/zero would never end) and reads no more than the limit allows.
    public func read(path: String) throws -> String {
        try BoundedRead.text(path: path, limit: maxBytes, what: what)
    }

    static func describe(bytes: Int) -> String {
        bytes % (1 << 20) == 0 ? "\(bytes >> 20) MiB" : bytes % 1024 == 0 ? "\(bytes >> 10) KiB" : "\(bytes) bytes"
    }

    /// Size and nesting, from the text alone: safe to call on anything.
    public func check(_ text: String, file: String) throws {
        let size = text.utf8.count
        guard size <= maxBytes else {
            throw YAMLLimitError(file: file, "\(what) is limited to \(Self.describe(bytes: maxBytes)); this one has \(size) bytes")
        }
        var scanner = YAMLDepthScanner(Array(text.utf8), limit: prescanDepth)
        if let (line, column) = scanner.run() {
            throw YAMLLimitError(file: file, line: line, column: column, "nesting deeper than \(maxDepth) levels (the limit for \(what))")
        }
    }

    /// `check`, then Yams, then the exact depth and the expanded size of the tree. Yams's own errors
    /// (`YamlError`) pass through for the caller to word.
    public func compose(_ text: String, file: String) throws -> Node? {
        try check(text, file: file)
        guard let root = try Yams.compose(yaml: text) else { return nil }
        var count = 0
        try measure(root, depth: root.isCollection ? 1 : 0, count: &count, file: file)
        return root
    }

    /// Walks the tree as a parser would, aliases expanded, and stops at the first limit crossed: the
    /// walk never goes deeper than `maxDepth + 1` nor visits more than `maxNodes + 1` values.
    func measure(_ node: Node, depth: Int, count: inout Int, file: String) throws {
        count += 1
        if count > maxNodes {
            throw YAMLLimitError(file: file, line: node.mark?.line ?? 0, column: node.mark?.column ?? 0,
                                 "more than \(maxNodes) values once aliases are expanded (the limit for \(what))")
        }
        if depth > maxDepth {
            throw YAMLLimitError(file: file, line: node.mark?.line ?? 0, column: node.mark?.column ?? 0, "nesting deeper than \(maxDepth) levels (the limit for \(what))")
        }
        switch node {
        case .scalar: break
        case .sequence(let s):
            for n in s { try measure(n, depth: depth + (n.isCollection ? 1 : 0), count: &count, file: file) }
        case .mapping(let m):
            for (k, v) in m {
                try measure(k, depth: depth + (k.isCollection ? 1 : 0), count: &count, file: file)
                try measure(v, depth: depth + (v.isCollection ? 1 : 0), count: &count, file: file)
            }
        @unknown default: break
        }
    }
}

extension Node {
    var isCollection: Bool {
        switch self {
        case .scalar: return false
        default: return true
        }
    }
}

/// A YAML file over one of `YAMLLimits`' limits, or unreadable; `line` and `column` (1-based) are 0
/// when not known.
public struct YAMLLimitError: Error, Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public var message: String

    public init(file: String, line: Int = 0, column: Int = 0, _ message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String {
        (line > 0 ? "\(file):\(line)" + (column > 0 ? ":\(column)" : "") : file) + ": error: " + message
    }
}
