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
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
