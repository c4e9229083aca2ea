import Foundation

/// An upper bound of the nesting depth of a YAML text, computed the way libyaml (the scanner inside
/// Yams) splits it into tokens, so that quotes, comments and scalars hide exactly what they hide from
/// libyaml. Counts block collections by their columns (a sequence may share its mapping's column),
/// a flow sequence as two levels (it may hold implicit single-pair mappings), a flow mapping as one,
/// one level of slack for a block mapping whose key is still being read, and an alias as the height
/// of what its anchor named. Where libyaml would stop with an error, the scanner goes on: counting
/// more never lowers the bound.
struct YAMLDepthScanner {
    let b: [UInt8]
    let limit: Int
    var i = 0
    var line = 1
    var column = 0
    /// Characters read so far (libyaml's mark.index), for the 1024-character reach of a simple key.
    var index = 0
    var tokenColumn = 0
    var tokenLine = 1
    var flow: [UInt8] = []            // '[' or '{' per open flow collection
    var flowWeight = 0
    var block: [(column: Int, sequence: Bool)] = []
    struct SimpleKey { var possible: Bool; var index: Int; var line: Int; var column: Int }
    var simpleKeys: [SimpleKey] = [SimpleKey(possible: false, index: 0, line: 0, column: 0)]
    var simpleKeyAllowed = true
    var heights: [[UInt8]: Int] = [:]
    enum AnchorState { case pending, flow(level: Int), block }
    /// An anchor whose node is not complete yet: the height of what it names grows while it is open.
    struct OpenAnchor {
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
    var open: [OpenAnchor] = []
    var maxDepth = 0

    init(_ bytes: [UInt8], limit: Int) {
        b = bytes
        self.limit = limit
    }

    // MARK: characters (libyaml's IS_* macros)

    func at(_ k: Int) -> UInt8 { i + k < b.count ? b[i + k] : 0 }
    func isBreak(_ k: Int = 0) -> Bool {
        let c = at(k)
        return c == 0x0A || c == 0x0D || (c == 0xC2 && at(k + 1) == 0x85)
            || (c == 0xE2 && at(k + 1) == 0x80 && (at(k + 2) == 0xA8 || at(k + 2) == 0xA9))
    }
    func isBlank(_ k: Int = 0) -> Bool { at(k) == 0x20 || at(k) == 0x09 }
    func isZ(_ k: Int = 0) -> Bool { i + k >= b.count || b[i + k] == 0 }
    func isBlankZ(_ k: Int = 0) -> Bool { isBlank(k) || isBreak(k) || isZ(k) }
    func isAlpha(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F || c == 0x2D
    }
    /// Characters that cannot start a plain scalar (most of them).
    static func isIndicator(_ c: UInt8) -> Bool {
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
    static func isFlowIndicator(_ c: UInt8) -> Bool {
        c == UInt8(ascii: ",") || c == UInt8(ascii: "[") || c == UInt8(ascii: "]") || c == UInt8(ascii: "{") || c == UInt8(ascii: "}")
    }
    /// URI characters of a tag besides letters, digits, '-' and '_'.
    static func isURIMark(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: ";"), UInt8(ascii: "/"), UInt8(ascii: "?"), UInt8(ascii: ":"), UInt8(ascii: "@"), UInt8(ascii: "&"),
             UInt8(ascii: "="), UInt8(ascii: "+"), UInt8(ascii: "$"), UInt8(ascii: "."), UInt8(ascii: "%"), UInt8(ascii: "!"),
             UInt8(ascii: "~"), UInt8(ascii: "*"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"):
            return true
        default:
            return false
        }
    }
    func width(_ c: UInt8) -> Int { c < 0x80 ? 1 : c & 0xE0 == 0xC0 ? 2 : c & 0xF0 == 0xE0 ? 3 : c & 0xF8 == 0xF0 ? 4 : 1 }

    /// One character forward (columns count characters, as libyaml's do).
    mutating func skip() {
        guard i < b.count else { return }
        i += width(b[i])
        column += 1
        index += 1
    }

    mutating func skipLine() {
        if at(0) == 0x0D && at(1) == 0x0A { i += 2; index += 2 } else if isBreak() { i += width(b[i]); index += 1 } else { return }
        line += 1
        column = 0
    }

    // MARK: depth

    var structural: Int { block.count + flowWeight }

    /// Records a depth reached; false once the limit is crossed.
    mutating func observe(_ extra: Int = 0) -> Bool {
        let d = structural + extra + 1
        if d > maxDepth { maxDepth = d }
        for k in open.indices where d > open[k].maxSeen { open[k].maxSeen = d }
        return d <= limit
    }

    mutating func close(_ k: Int) {
        let a = open.remove(at: k)
        heights[a.name] = max(0, a.maxSeen - a.base)
    }

    enum Token { case tag, anchor, nodeStart, flowStart, scalar, empty }

    /// Moves anchors waiting for their node along, given the token that starts at the current position.
    mutating func advanceAnchors(_ token: Token) {
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

    mutating func closeFlowAnchors() {
        var k = open.count - 1
        while k >= 0 {
            if case .flow(let level) = open[k].state, flow.count < level { close(k) }
            k -= 1
        }
    }

    // MARK: block structure

    mutating func unroll(_ c: Int) {
        guard flow.isEmpty else { return }
        while let top = block.last, top.column > c { block.removeLast() }
    }

    /// A token other than '-' at the column of a sequence that shares its mapping's column ends that sequence.
    mutating func endIndentlessSequence(at c: Int) {
        guard flow.isEmpty, block.count >= 2, let top = block.last, top.sequence, top.column == c,
              block[block.count - 2].column == c, !block[block.count - 2].sequence else { return }
        block.removeLast()
    }

    mutating func mappingAt(_ c: Int) {
        guard flow.isEmpty else { return }
        endIndentlessSequence(at: c)
        if let top = block.last, top.column >= c { return }
        block.append((c, false))
    }

    mutating func sequenceAt(_ c: Int) {
        guard flow.isEmpty else { return }
        if let top = block.last {
            if top.column > c || (top.column == c && top.sequence) { return }
        }
        block.append((c, true))
    }

    // MARK: simple keys

    mutating func saveSimpleKey() {
        if simpleKeyAllowed { simpleKeys[simpleKeys.count - 1] = SimpleKey(possible: true, index: index, line: line, column: column) }
    }

    mutating func removeSimpleKey() { simpleKeys[simpleKeys.count - 1].possible = false }

    mutating func staleSimpleKeys() {
        for k in simpleKeys.indices where simpleKeys[k].possible && (simpleKeys[k].line < line || simpleKeys[k].index + 1024 < index) {
            simpleKeys[k].possible = false
        }
    }
}
