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

/// Reading a file descriptor up to a limit, for inputs whose size a header cannot be trusted for.
public enum BoundedRead {
    /// A regular file of at most `limit` bytes, as UTF-8 text: refuses what is not a regular file (a
    /// FIFO or /dev/zero would never end) and reads no more than the limit allows.
    public static func text(path: String, limit: Int, what: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            throw YAMLLimitError(file: path, "cannot read \(what): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw YAMLLimitError(file: path, "cannot read \(what): \(String(cString: strerror(errno)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw YAMLLimitError(file: path, "\(what) must be a regular file") }
        guard st.st_size <= limit else {
            throw YAMLLimitError(file: path, "\(what) is limited to \(YAMLLimits.describe(bytes: limit)); this one has \(st.st_size) bytes")
        }
        let bytes = try all(fd: fd, limit: limit, path: path, what: what)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw YAMLLimitError(file: path, "\(what) must be UTF-8 text")
        }
        return text
    }

    /// Every byte of `fd`; an error naming `path` when there are more than `limit`.
    public static func all(fd: Int32, limit: Int, path: String, what: String) throws -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw YAMLLimitError(file: path, "cannot read \(what): \(String(cString: strerror(errno)))")
            }
            if n == 0 { return out }
            guard out.count + n <= limit else {
                throw YAMLLimitError(file: path, "\(what) is limited to \(YAMLLimits.describe(bytes: limit)); this one has more")
            }
            out.append(contentsOf: chunk[0..<n])
        }
    }
}

/// An upper bound of the nesting depth of a YAML text, computed the way libyaml (the scanner inside
/// Yams) splits it into tokens, so that quotes, comments and scalars hide exactly what they hide from
/// libyaml. Counts block collections by their columns (a sequence may share its mapping's column),
/// a flow sequence as two levels (it may hold implicit single-pair mappings), a flow mapping as one,
/// one level of slack for a block mapping whose key is still being read, and an alias as the height
/// of what its anchor named. Where libyaml would stop with an error, the scanner goes on: counting
/// more never lowers the bound.
struct YAMLDepthScanner {
    private let b: [UInt8]
    private let limit: Int
    private var i = 0
    private var line = 1
    private var column = 0
    /// Characters read so far (libyaml's mark.index), for the 1024-character reach of a simple key.
    private var index = 0
    private var tokenColumn = 0
    private var tokenLine = 1
    private var flow: [UInt8] = []            // '[' or '{' per open flow collection
    private var flowWeight = 0
    private var block: [(column: Int, sequence: Bool)] = []
    private struct SimpleKey { var possible: Bool; var index: Int; var line: Int; var column: Int }
    private var simpleKeys: [SimpleKey] = [SimpleKey(possible: false, index: 0, line: 0, column: 0)]
    private var simpleKeyAllowed = true
    private var heights: [[UInt8]: Int] = [:]
    private enum AnchorState { case pending, flow(level: Int), block }
    /// An anchor whose node is not complete yet: the height of what it names grows while it is open.
    private struct OpenAnchor {
        var name: [UInt8]
        var base: Int
        var state: AnchorState
        var maxSeen: Int
        var line: Int
        var flowLevel: Int
        /// The block collection the anchored node belongs to (-1: the document).
        var parentColumn: Int
        var parentIsMapping: Bool
    }
    private var open: [OpenAnchor] = []
    private(set) var maxDepth = 0

    init(_ bytes: [UInt8], limit: Int) {
        b = bytes
        self.limit = limit
    }

    // MARK: characters (libyaml's IS_* macros)

    private func at(_ k: Int) -> UInt8 { i + k < b.count ? b[i + k] : 0 }
    private func isBreak(_ k: Int = 0) -> Bool {
        let c = at(k)
        return c == 0x0A || c == 0x0D || (c == 0xC2 && at(k + 1) == 0x85)
            || (c == 0xE2 && at(k + 1) == 0x80 && (at(k + 2) == 0xA8 || at(k + 2) == 0xA9))
    }
    private func isBlank(_ k: Int = 0) -> Bool { at(k) == 0x20 || at(k) == 0x09 }
    private func isZ(_ k: Int = 0) -> Bool { i + k >= b.count || b[i + k] == 0 }
    private func isBlankZ(_ k: Int = 0) -> Bool { isBlank(k) || isBreak(k) || isZ(k) }
    private func isAlpha(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F || c == 0x2D
    }
    /// Characters that cannot start a plain scalar (most of them).
    private static func isIndicator(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "-"), UInt8(ascii: "?"), UInt8(ascii: ":"), UInt8(ascii: ","), UInt8(ascii: "["), UInt8(ascii: "]"),
             UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: "#"), UInt8(ascii: "&"), UInt8(ascii: "*"), UInt8(ascii: "!"),
             UInt8(ascii: "|"), UInt8(ascii: ">"), UInt8(ascii: "'"), UInt8(ascii: "\""), UInt8(ascii: "%"), UInt8(ascii: "@"),
             UInt8(ascii: "`"):
            return true
        default:
            return false
        }
    }
    private static func isFlowIndicator(_ c: UInt8) -> Bool {
        c == UInt8(ascii: ",") || c == UInt8(ascii: "[") || c == UInt8(ascii: "]") || c == UInt8(ascii: "{") || c == UInt8(ascii: "}")
    }
    /// URI characters of a tag besides letters, digits, '-' and '_'.
    private static func isURIMark(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: ";"), UInt8(ascii: "/"), UInt8(ascii: "?"), UInt8(ascii: ":"), UInt8(ascii: "@"), UInt8(ascii: "&"),
             UInt8(ascii: "="), UInt8(ascii: "+"), UInt8(ascii: "$"), UInt8(ascii: "."), UInt8(ascii: "%"), UInt8(ascii: "!"),
             UInt8(ascii: "~"), UInt8(ascii: "*"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"):
            return true
        default:
            return false
        }
    }
    private func width(_ c: UInt8) -> Int { c < 0x80 ? 1 : c & 0xE0 == 0xC0 ? 2 : c & 0xF0 == 0xE0 ? 3 : c & 0xF8 == 0xF0 ? 4 : 1 }

    /// One character forward (columns count characters, as libyaml's do).
    private mutating func skip() {
        guard i < b.count else { return }
        i += width(b[i])
        column += 1
        index += 1
    }

    private mutating func skipLine() {
        if at(0) == 0x0D && at(1) == 0x0A { i += 2; index += 2 } else if isBreak() { i += width(b[i]); index += 1 } else { return }
        line += 1
        column = 0
    }

    // MARK: depth

    private var structural: Int { block.count + flowWeight }

    /// Records a depth reached; false once the limit is crossed.
    private mutating func observe(_ extra: Int = 0) -> Bool {
        let d = structural + extra + 1
        if d > maxDepth { maxDepth = d }
        for k in open.indices where d > open[k].maxSeen { open[k].maxSeen = d }
        return d <= limit
    }

    private mutating func close(_ k: Int) {
        let a = open.remove(at: k)
        heights[a.name] = max(0, a.maxSeen - a.base)
    }

    private enum Token { case tag, anchor, nodeStart, flowStart, scalar, empty }

    /// Moves anchors waiting for their node along, given the token that starts at the current position.
    private mutating func advanceAnchors(_ token: Token) {
        var k = open.count - 1
        while k >= 0 {
            if case .pending = open[k].state, token != .tag, token != .anchor {
                if open[k].flowLevel > 0 || open[k].line == line {
                    // On the anchor's line (or in a flow collection), the next token is the node.
                    if token == .flowStart { open[k].state = .flow(level: flow.count + 1) } else { close(k) }
                    k -= 1
                    continue
                }
                // On a later line: a block node (or a scalar) that ends where its parent's next entry starts.
                open[k].state = .block
            }
            if case .block = open[k].state, flow.isEmpty {
                let c = open[k].parentColumn
                let indentlessEntry = token == .nodeStart && open[k].parentIsMapping && at(0) == 0x2D
                if column < c || (column == c && !indentlessEntry) { close(k) }
            }
            k -= 1
        }
    }

    private mutating func closeFlowAnchors() {
        var k = open.count - 1
        while k >= 0 {
            if case .flow(let level) = open[k].state, flow.count < level { close(k) }
            k -= 1
        }
    }

    // MARK: block structure

    private mutating func unroll(_ c: Int) {
        guard flow.isEmpty else { return }
        while let top = block.last, top.column > c { block.removeLast() }
    }

    /// A token other than '-' at the column of a sequence that shares its mapping's column ends that sequence.
    private mutating func endIndentlessSequence(at c: Int) {
        guard flow.isEmpty, block.count >= 2, let top = block.last, top.sequence, top.column == c,
              block[block.count - 2].column == c, !block[block.count - 2].sequence else { return }
        block.removeLast()
    }

    private mutating func mappingAt(_ c: Int) {
        guard flow.isEmpty else { return }
        endIndentlessSequence(at: c)
        if let top = block.last, top.column >= c { return }
        block.append((c, false))
    }

    private mutating func sequenceAt(_ c: Int) {
        guard flow.isEmpty else { return }
        if let top = block.last {
            if top.column > c || (top.column == c && top.sequence) { return }
        }
        block.append((c, true))
    }

    // MARK: simple keys

    private mutating func saveSimpleKey() {
        if simpleKeyAllowed { simpleKeys[simpleKeys.count - 1] = SimpleKey(possible: true, index: index, line: line, column: column) }
    }

    private mutating func removeSimpleKey() { simpleKeys[simpleKeys.count - 1].possible = false }

    private mutating func staleSimpleKeys() {
        for k in simpleKeys.indices where simpleKeys[k].possible && (simpleKeys[k].line < line || simpleKeys[k].index + 1024 < index) {
            simpleKeys[k].possible = false
        }
    }

    // MARK: the scan

    /// Where (line, column, 1-based) the depth first exceeds the limit, or nil.
    mutating func run() -> (line: Int, column: Int)? {
        while true {
            scanToNextToken()
            if isZ() { return nil }
            staleSimpleKeys()
            tokenColumn = column
            tokenLine = line
            unroll(column)
            let c = at(0)
            if column == 0 && c == 0x25 {  // %directive
                block.removeAll(); removeSimpleKey(); simpleKeyAllowed = false
                closeAll()
                while !isBreak() && !isZ() { skip() }
                continue
            }
            if column == 0 && ((c == 0x2D && at(1) == 0x2D && at(2) == 0x2D) || (c == 0x2E && at(1) == 0x2E && at(2) == 0x2E)) && isBlankZ(3) {
                block.removeAll(); removeSimpleKey(); simpleKeyAllowed = false
                closeAll()
                skip(); skip(); skip()
                continue
            }
            if c == 0x5B || c == 0x7B {  // [ {
                endIndentlessSequence(at: column)
                advanceAnchors(.flowStart)
                saveSimpleKey()
                flow.append(c)
                flowWeight += c == 0x5B ? 2 : 1
                simpleKeys.append(SimpleKey(possible: false, index: 0, line: 0, column: 0))
                simpleKeyAllowed = true
                skip()
                if !observe() { return (tokenLine, tokenColumn + 1) }
                continue
            }
            if c == 0x5D || c == 0x7D {  // ] }
                advanceAnchors(.empty)
                removeSimpleKey()
                if let last = flow.popLast() {
                    flowWeight -= last == 0x5B ? 2 : 1
                    simpleKeys.removeLast()
                }
                closeFlowAnchors()
                simpleKeyAllowed = false
                skip()
                continue
            }
            if c == 0x2C {  // ,
                advanceAnchors(.empty)
                removeSimpleKey()
                simpleKeyAllowed = true
                skip()
                continue
            }
            if c == 0x2D && isBlankZ(1) {  // - entry
                advanceAnchors(.nodeStart)
                sequenceAt(column)
                removeSimpleKey()
                simpleKeyAllowed = true
                skip()
                if !observe() { return (tokenLine, tokenColumn + 1) }
                continue
            }
            if c == 0x3F && (!flow.isEmpty || isBlankZ(1)) {  // ? key
                endIndentlessSequence(at: column)
                advanceAnchors(.nodeStart)
                mappingAt(column)
                removeSimpleKey()
                simpleKeyAllowed = flow.isEmpty
                skip()
                if !observe() { return (tokenLine, tokenColumn + 1) }
                continue
            }
            if c == 0x3A && (!flow.isEmpty || isBlankZ(1)) {  // : value
                endIndentlessSequence(at: column)
                advanceAnchors(.empty)
                let key = simpleKeys[simpleKeys.count - 1]
                if key.possible {
                    mappingAt(key.column)
                    simpleKeys[simpleKeys.count - 1].possible = false
                    simpleKeyAllowed = false
                } else {
                    mappingAt(column)
                    simpleKeyAllowed = flow.isEmpty
                }
                skip()
                if !observe() { return (tokenLine, tokenColumn + 1) }
                continue
            }
            if c == 0x2A || c == 0x26 {  // * alias, & anchor
                endIndentlessSequence(at: column)
                let alias = c == 0x2A
                advanceAnchors(alias ? .scalar : .anchor)
                saveSimpleKey()
                simpleKeyAllowed = false
                skip()
                let start = i
                while i < b.count && isAlpha(b[i]) { skip() }
                let name = Array(b[start..<i])
                if alias {
                    if !observe(heights[name] ?? 0) { return (tokenLine, tokenColumn + 1) }
                } else {
                    open.append(OpenAnchor(name: name, base: structural + 1, state: .pending, maxSeen: structural + 1, line: line,
                                           flowLevel: flow.count, parentColumn: block.last?.column ?? -1,
                                           parentIsMapping: block.last.map { !$0.sequence } ?? false))
                }
                continue
            }
            if c == 0x21 {  // ! tag
                endIndentlessSequence(at: column)
                advanceAnchors(.tag)
                saveSimpleKey()
                simpleKeyAllowed = false
                scanTag()
                continue
            }
            if (c == 0x7C || c == 0x3E) && flow.isEmpty {  // | > block scalar
                endIndentlessSequence(at: column)
                advanceAnchors(.scalar)
                removeSimpleKey()
                simpleKeyAllowed = true
                scanBlockScalar()
                if !observe() { return (tokenLine, tokenColumn + 1) }
                continue
            }
            if c == 0x27 || c == 0x22 {  // ' "
                endIndentlessSequence(at: column)
                advanceAnchors(.scalar)
                saveSimpleKey()
                simpleKeyAllowed = false
                scanQuoted(single: c == 0x27)
                if !observe() { return (tokenLine, tokenColumn + 1) }
                continue
            }
            let plain = !(isBlankZ() || Self.isIndicator(c))
                || (c == 0x2D && !isBlank(1))
                || (flow.isEmpty && (c == 0x3F || c == 0x3A) && !isBlankZ(1))
            if plain {
                endIndentlessSequence(at: column)
                advanceAnchors(.scalar)
                saveSimpleKey()
                simpleKeyAllowed = false
                scanPlain()
                if !observe() { return (tokenLine, tokenColumn + 1) }
                continue
            }
            // libyaml stops here with an error; going on can only count more.
            skip()
        }
    }

    private mutating func closeAll() {
        while !open.isEmpty { close(open.count - 1) }
    }

    private mutating func scanToNextToken() {
        while true {
            if column == 0 && at(0) == 0xEF && at(1) == 0xBB && at(2) == 0xBF { skip() }
            while at(0) == 0x20 || ((!flow.isEmpty || !simpleKeyAllowed) && at(0) == 0x09) { skip() }
            if at(0) == 0x23 { while !isBreak() && !isZ() { skip() } }
            if isBreak() {
                skipLine()
                if flow.isEmpty { simpleKeyAllowed = true }
            } else {
                return
            }
        }
    }

    private mutating func scanTag() {
        if at(1) == 0x3C {  // !<verbatim>
            skip(); skip()
            while !isBlankZ() && at(0) != 0x3E { skip() }
            if at(0) == 0x3E { skip() }
            return
        }
        skip()
        while i < b.count && (isAlpha(b[i]) || Self.isURIMark(b[i])) { skip() }
    }

    private mutating func scanQuoted(single: Bool) {
        skip()
        while !isZ() {
            if column == 0 && isBlankZ(3)
                && ((at(0) == 0x2D && at(1) == 0x2D && at(2) == 0x2D) || (at(0) == 0x2E && at(1) == 0x2E && at(2) == 0x2E)) {
                return  // libyaml: "found unexpected document indicator"
            }
            while !isBlankZ() {
                let c = at(0)
                if single && c == 0x27 && at(1) == 0x27 { skip(); skip(); continue }
                if single && c == 0x27 { skip(); return }
                if !single && c == 0x22 { skip(); return }
                if !single && c == 0x5C {
                    if isBreak(1) { skip(); skipLine(); break }
                    skip(); skip()
                    continue
                }
                skip()
            }
            while isBlank() || isBreak() {
                if isBlank() { skip() } else { skipLine() }
            }
        }
    }

    private mutating func scanPlain() {
        let indent = (block.last?.column ?? -1) + 1
        var leadingBlanks = false
        while true {
            if column == 0 && isBlankZ(3)
                && ((at(0) == 0x2D && at(1) == 0x2D && at(2) == 0x2D) || (at(0) == 0x2E && at(1) == 0x2E && at(2) == 0x2E)) {
                break
            }
            if at(0) == 0x23 { break }
            var stop = false
            while !isBlankZ() {
                let c = at(0)
                if !flow.isEmpty && c == 0x3A && (at(1) == 0x3F || Self.isFlowIndicator(at(1))) { stop = true; break }
                if (c == 0x3A && isBlankZ(1)) || (!flow.isEmpty && Self.isFlowIndicator(c)) { stop = true; break }
                skip()
            }
            if stop || !(isBlank() || isBreak()) { break }
            while isBlank() || isBreak() {
                if isBlank() { skip() } else { skipLine(); leadingBlanks = true }
            }
            if flow.isEmpty && column < indent { break }
        }
        if leadingBlanks { simpleKeyAllowed = true }
    }

    private mutating func scanBlockScalar() {
        skip()
        var increment = 0
        if at(0) == 0x2B || at(0) == 0x2D {
            skip()
            if at(0) >= 0x30 && at(0) <= 0x39 { increment = Int(at(0) - 0x30); skip() }
        } else if at(0) >= 0x30 && at(0) <= 0x39 {
            increment = Int(at(0) - 0x30)
            skip()
            if at(0) == 0x2B || at(0) == 0x2D { skip() }
        }
        while isBlank() { skip() }
        if at(0) == 0x23 { while !isBreak() && !isZ() { skip() } }
        guard isBreak() || isZ() else { return }  // libyaml: error
        skipLine()
        let parentIndent = block.last?.column ?? -1
        var indent = increment > 0 ? (parentIndent >= 0 ? parentIndent + increment : increment) : 0
        blockScalarBreaks(&indent, parentIndent: parentIndent)
        while column == indent && !isZ() {
            while !isBreak() && !isZ() { skip() }
            if isZ() { break }
            skipLine()
            blockScalarBreaks(&indent, parentIndent: parentIndent)
        }
    }

    private mutating func blockScalarBreaks(_ indent: inout Int, parentIndent: Int) {
        var maxIndent = 0
        while true {
            while (indent == 0 || column < indent) && at(0) == 0x20 { skip() }
            if column > maxIndent { maxIndent = column }
            if !isBreak() { break }
            skipLine()
        }
        if indent == 0 { indent = max(maxIndent, parentIndent + 1, 1) }
    }
}

/// What Yams says of text it cannot read: where (when it knows) and what, for the file's error.
public func describeYAMLError(_ e: YamlError, file: String) -> (location: SourceLocation?, message: String) {
    switch e {
    case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
        return (SourceLocation(file: file, line: mark.line, column: mark.column), "invalid YAML: \(problem)")
    case .reader(let problem, _, _, _):
        return (nil, "invalid YAML: \(problem)")
    default:
        return (nil, "invalid YAML: \(e)")
    }
}

/// A memory size in MiB as compositions and flavours write it: `1024`, `512M`, `2G`. Nil for
/// anything else, and for a count of G whose MiB would overflow.
public func parseMemorySize(_ text: String) -> Int? {
    let t = text.uppercased()
    if let v = Int(t) { return v }
    if t.hasSuffix("M"), let v = Int(t.dropLast()) { return v }
    if t.hasSuffix("G"), let v = Int(t.dropLast()) {
        let (product, overflow) = v.multipliedReportingOverflow(by: 1024)
        return overflow ? nil : product
    }
    return nil
}
