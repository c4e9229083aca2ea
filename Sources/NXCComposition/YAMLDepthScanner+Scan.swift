import Foundation

/// The scan itself: one pass over the text, token by token, as libyaml's scanner goes.
extension YAMLDepthScanner {
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

    mutating func closeAll() {
        while !open.isEmpty { close(open.count - 1) }
    }

    mutating func scanToNextToken() {
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

    mutating func scanTag() {
        if at(1) == 0x3C {  // !<verbatim>
            skip(); skip()
            while !isBlankZ() && at(0) != 0x3E { skip() }
            if at(0) == 0x3E { skip() }
            return
        }
        skip()
        while i < b.count && (isAlpha(b[i]) || Self.isURIMark(b[i])) { skip() }
    }

    mutating func scanQuoted(single: Bool) {
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

    mutating func scanPlain() {
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

    mutating func scanBlockScalar() {
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

    mutating func blockScalarBreaks(_ indent: inout Int, parentIndent: Int) {
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
