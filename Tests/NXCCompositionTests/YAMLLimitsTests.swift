import Foundation
import XCTest
import Yams
@testable import NXCComposition

/// The YAML limits: size, nesting (refused from the text, before Yams recurses), alias expansion.
final class YAMLLimitsTests: XCTestCase {
    /// Collections inside collections, aliases followed (Yams shares aliased nodes).
    func depth(_ n: Node) -> Int {
        switch n {
        case .scalar: return 0
        case .sequence(let s): return 1 + (s.map(depth).max() ?? 0)
        case .mapping(let m): return 1 + (m.map { max(depth($0.key), depth($0.value)) }.max() ?? 0)
        @unknown default: return 0
        }
    }

    func estimate(_ text: String) -> Int {
        var s = YAMLDepthScanner(Array(text.utf8), limit: Int.max)
        _ = s.run()
        return s.maxDepth
    }

    /// The pre-scan is only safe if it never reports less than the depth Yams builds.
    func assertBound(_ text: String, file: StaticString = #filePath, line: UInt = #line) {
        guard let node = try? Yams.compose(yaml: text) else { return }
        let real = depth(node)
        let bound = estimate(text)
        XCTAssertGreaterThanOrEqual(bound, real, "pre-scan under-counts: \(text.debugDescription)", file: file, line: line)
    }

    func testBoundOnHandWrittenCases() {
        let cases = [
            "a: [b, [c, {d: e}]]",
            "- - - - x",
            "a:\n- b\n- c:\n  - d:\n    - e\nf: g",
            "? - - a\n: - b",
            "[[[x]]]: y",
            "[a: [b: [c: [d]]]]",
            "[[[[x]: a]: b]: c]",
            "k: 'it''s [ [ [' \n[ [ x ] ]: y",
            "k: \"a \\\" [[[[\"\nl: [[[1]]]",
            "k: a 'b\n  [[[c]]]",
            "k: |\n  [[[[\n   - - - -\nl: [[x]]",
            "k: >2\n    [[[\nl: {a: {b: {c: d}}}",
            "- &a [[[[x]]]]\n- [[[[*a]]]]",
            "a: &a\n  b: [[[[x]]]]\nc: [[[*a]]]",
            "a: &a [x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nd: [*c]",
            "&r\nk: [[[v]]]",
            "k: !t [[x]]\nl: !<tag:x,2000:[[> [[y]]",
            "a: b # [[[[\nc: [[[d]]]",
            "[a, # ]]]]\n [[b]]]",
            "a:\n  - b\n  -\n    - c\n    - [[d]]",
            "--- [[a]]\n",
            "k: a\n  b\n  c: [[[d]]]",
            "\"k\": [[x]]",
            "{? [[a]] : [[b]]}",
            "- ? a\n  : - - b",
            "a: &x\n- [[[b]]]\nc: *x",
        ]
        for c in cases { assertBound(c) }
    }

    /// Random token soup, hundreds of thousands of shapes: wherever Yams accepts the text, the bound holds.
    func testBoundOnRandomTexts() {
        let pieces = ["[", "]", "{", "}", ", ", ":", ": ", " ", "\n", "- ", "? ", "a", "bc", "'", "\"", " #", "&x ", "*x", "&y ",
                      "*y", "!t ", "| ", "> ", "  ", "\\", "-", "\n---\n", "\t", "é", "\n  ", "\n    ", "''", "|2\n", "\r\n", "%"]
        var rng = SplitMix(seed: 20_261_126)
        var composed = 0
        for _ in 0..<60_000 {
            let n = Int(rng.next() % 40) + 1
            var text = ""
            for _ in 0..<n { text += pieces[Int(rng.next() % UInt64(pieces.count))] }
            if let node = try? Yams.compose(yaml: text) {
                composed += 1
                let real = depth(node)
                let bound = estimate(text)
                if bound < real {
                    XCTFail("pre-scan under-counts (\(bound) < \(real)): \(text.debugDescription)")
                    return
                }
            }
        }
        XCTAssertGreaterThan(composed, 5_000, "enough of the texts are YAML for the test to mean something")
    }

    /// Generated documents near real ones: wherever Yams accepts them, the bound holds. (Breaking the
    /// scanner on purpose — one level per flow sequence, aliases of no height, no slack for a key
    /// being read, block anchors closed early, NEL not a line break — makes this test fail.)
    func testBoundOnGeneratedDocuments() {
        var rng = SplitMix(seed: 7)
        var composed = 0
        var deepest = 0
        for _ in 0..<30_000 {
            var g = YAMLGenerator(rng: SplitMix(seed: rng.next()))
            let text = g.document()
            guard let node = try? Yams.compose(yaml: text) else { continue }
            composed += 1
            let real = depth(node)
            deepest = max(deepest, real)
            let bound = estimate(text)
            if bound < real {
                XCTFail("pre-scan under-counts (\(bound) < \(real)): \(text.debugDescription)")
                return
            }
        }
        XCTAssertGreaterThan(composed, 5_000)
        XCTAssertGreaterThanOrEqual(deepest, 10)
    }

    func testBoundIsNotTooLoose() {
        // A real composition stays far below the limit.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = (try? String(contentsOf: root.appendingPathComponent("compositions/webserver/composition.yaml"), encoding: .utf8)) ?? ""
        XCTAssertFalse(text.isEmpty)
        XCTAssertLessThanOrEqual(estimate(text), 12)
        // 64 levels of block nesting pass, 65 do not.
        var ok = ""
        for d in 0..<63 { ok += String(repeating: "  ", count: d) + "k\(d):\n" }
        ok += String(repeating: "  ", count: 63) + "k: v\n"
        XCTAssertNoThrow(try YAMLLimits.composition.compose(ok, file: "deep.yaml"))
        let tooDeep = ok + String(repeating: "  ", count: 63) + "j:\n" + String(repeating: "  ", count: 64) + "k: v\n"
        XCTAssertThrowsError(try YAMLLimits.composition.compose(tooDeep, file: "deep.yaml")) { e in
            XCTAssertTrue("\(e)".hasPrefix("deep.yaml:66:"), "\(e)")
            XCTAssertTrue("\(e)".hasSuffix(": error: nesting deeper than 64 levels (the limit for a composition)"), "\(e)")
        }
    }

    /// 5,000 levels crashed `nxc check` (Yams recurses); now refused from the text, whatever the style.
    func testDeepNestingIsRefusedBeforeYams() {
        let n = 5_000
        let texts = [
            String(repeating: "[", count: n) + String(repeating: "]", count: n),
            String(repeating: "{a: ", count: n) + "b" + String(repeating: "}", count: n),
            String(repeating: "- ", count: n) + "x",
            (0..<400).map { String(repeating: " ", count: $0) + "k:" }.joined(separator: "\n") + " v",
            "roles:\n  a:\n    packages: " + String(repeating: "[", count: 100_000),
        ]
        for t in texts {
            XCTAssertThrowsError(try YAMLLimits.composition.check(t, file: "deep.yaml")) { e in
                XCTAssertTrue("\(e)".hasPrefix("deep.yaml:"), "\(e)")
                XCTAssertTrue("\(e)".contains("nesting deeper than 64 levels"), "\(e)")
            }
        }
    }

    /// Nesting built from aliases of aliases: shared by Yams, but deep for whoever walks (or frees) the tree.
    func testAliasChainsCountTowardsDepth() {
        var text = "a0: &a0 [x]\n"
        for k in 1..<2_000 { text += "a\(k): &a\(k) [*a\(k - 1)]\n" }
        XCTAssertThrowsError(try YAMLLimits.composition.check(text, file: "chain.yaml")) { e in
            XCTAssertTrue("\(e)".contains("nesting deeper than 64 levels"), "\(e)")
        }
    }

    /// "Billion laughs": nine levels of ten aliases each; refused by the expanded count, quickly.
    func testAliasExpansionIsBounded() {
        var text = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        var previous = "a"
        for name in ["b", "c", "d", "e", "f", "g", "h", "i"] {
            text += "\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 10).joined(separator: ", ") + "]\n"
            previous = name
        }
        let started = Date()
        XCTAssertThrowsError(try YAMLLimits.composition.compose(text, file: "lol.yaml")) { e in
            XCTAssertTrue("\(e)".contains("more than 1048576 values once aliases are expanded"), "\(e)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
    }

    func testSizeLimit() throws {
        let big = String(repeating: "# padding\n", count: 110_000)
        XCTAssertThrowsError(try YAMLLimits.composition.check(big, file: "big.yaml")) { e in
            XCTAssertEqual("\(e)", "big.yaml: error: a composition is limited to 1 MiB; this one has 1100000 bytes")
        }
        let path = NSTemporaryDirectory() + "nxc-big-\(UUID().uuidString).yaml"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(big.utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try YAMLLimits.composition.read(path: path)) { e in
            XCTAssertTrue("\(e)".hasPrefix(path + ": error: a composition is limited to 1 MiB"), "\(e)")
        }
    }

    func testReadRefusesWhatIsNotARegularFile() {
        XCTAssertThrowsError(try YAMLLimits.composition.read(path: "/dev/zero")) { e in
            XCTAssertEqual("\(e)", "/dev/zero: error: a composition must be a regular file")
        }
        XCTAssertThrowsError(try YAMLLimits.composition.read(path: NSTemporaryDirectory())) { e in
            XCTAssertTrue("\(e)".hasSuffix("a composition must be a regular file"), "\(e)")
        }
        XCTAssertThrowsError(try YAMLLimits.lock.read(path: "/nonexistent/nxc.lock")) { e in
            XCTAssertEqual("\(e)", "/nonexistent/nxc.lock: error: cannot read a lock file: No such file or directory")
        }
    }
}

/// A small deterministic generator, so that a failure can be replayed.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    init(state: UInt64) { self.state = state }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random YAML documents in every style libyaml reads (block and flow collections, indentless and
/// compact sequences, complex keys, anchors and aliases, quoted, plain and block scalars holding
/// brackets, comments, other line breaks), some of them then damaged a little.
struct YAMLGenerator {
    var rng: SplitMix
    var anchors = 0
    mutating func r(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }
    mutating func chance(_ p: Int) -> Bool { r(100) < p }
    mutating func scalar(inFlow: Bool) -> String {
        if anchors > 0 && chance(15) { return "*a\(r(anchors))" }
        let plain = ["a", "b c", "x[y", "it's", "a#b", "-x", "k:v", "1", "~", "é ü", "?q"]
        let flowSafe = ["a", "b c", "it's", "a#b", "-x", "1", "é"]
        let quoted = ["'[[ '' ]]'", "\"\\\" [[ \\\\ {\"", "'a # b'", "\"x\\\ny\"", "'multi\n  line [[['", "\"\"", "''", "'a, b", "\"c\\\\\"", "'x\n\n  y'"]
        switch r(3) {
        case 0: return quoted[r(quoted.count)]
        default: return inFlow ? flowSafe[r(flowSafe.count)] : plain[r(plain.count)]
        }
    }
    mutating func anchor() -> String {
        if chance(12) { anchors += 1; return "&a\(anchors - 1) " }
        return ""
    }
    mutating func flow(_ depth: Int) -> String {
        if depth <= 0 || chance(30) { return anchor() + scalar(inFlow: true) }
        let sep = chance(20) ? ",\n  " : ", "
        let n = r(4)
        if chance(50) {
            var items: [String] = []
            for _ in 0..<n {
                if chance(20) { items.append(flow(depth - 1) + ": " + flow(depth - 1)) } else { items.append(flow(depth - 1)) }
            }
            return anchor() + "[" + items.joined(separator: sep) + "]" + (chance(10) ? " # ]]" : "")
        } else {
            var items: [String] = []
            for _ in 0..<n { items.append((chance(20) ? "? " : "") + flow(depth - 1) + ": " + flow(depth - 1)) }
            return anchor() + "{" + items.joined(separator: sep) + "}"
        }
    }
    /// A block node's text; `indent` is where its lines start.
    mutating func block(_ depth: Int, indent: Int) -> (inline: String, lines: String) {
        let pad = String(repeating: " ", count: indent)
        if depth <= 0 || chance(25) {
            if chance(10) { return ("|" + (chance(30) ? "2" : "") + "\n", pad + "  [[[ - - #\n" + pad + "   k: [v\n") }
            if chance(30) { return (flow(3), "") }
            return (anchor() + scalar(inFlow: false), "")
        }
        let a = anchor()
        var out = ""
        let n = 1 + r(3)
        if chance(50) {
            for _ in 0..<n {
                let v = block(depth - 1, indent: indent + 2)
                if v.lines.isEmpty { out += pad + "- " + v.inline + "\n" }
                else if chance(30) && !v.inline.hasPrefix("|") { out += pad + "- " + v.inline + "\n" + v.lines }
                else { out += pad + "- " + v.inline + "\n" + v.lines }
            }
        } else {
            for k in 0..<n {
                let key = chance(10) ? "? " + scalar(inFlow: false) + "\n" + pad + ":" : (chance(10) ? flow(2) : (chance(20) ? "'k\(k)'" : "k\(k)")) + ":"
                let indentless = chance(30)
                let v = block(depth - 1, indent: indentless ? indent : indent + 2)
                if v.lines.isEmpty { out += pad + key + " " + v.inline + (chance(10) ? " # [[\n" : "\n") }
                else { out += pad + key + " " + v.inline + "\n" + v.lines }
            }
        }
        // A collection starts on the next line; put its anchor on this one.
        return (a.isEmpty ? "" : a, out)
    }
    mutating func document() -> String {
        anchors = 0
        let b = block(3 + r(4), indent: 0)
        var t = b.lines.isEmpty ? b.inline : (b.inline.isEmpty ? "" : b.inline + "\n") + b.lines
        if chance(40) {
            var bytes = Array(t.utf8)
            for _ in 0..<(1 + r(3)) where !bytes.isEmpty {
                let p = r(bytes.count)
                switch r(3) {
                case 0: bytes.remove(at: p)
                case 1: bytes.insert(contentsOf: Array(["[", "]", "{", "- ", ": ", "'", "\"", "#", "\n", " ", "*a0", "&a9 "][r(12)].utf8), at: p)
                default: bytes.insert(bytes[r(bytes.count)], at: p)
                }
            }
            t = String(decoding: bytes, as: UTF8.self)
        }
        if chance(10) { t = t.replacingOccurrences(of: "\n", with: ["\r\n", "\u{85}", "\u{2028}", "\r", "\t\n"][r(5)]) }
        if chance(3) { t = "\u{FEFF}" + t }
        return t
    }
}
