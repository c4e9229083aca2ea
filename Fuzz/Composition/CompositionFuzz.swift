// libFuzzer target: composition files (`composition.yaml`), which users share and
// which `nxc verify` reads from archives it was given. It also checks YAMLLimits' text
// pre-scan, the guard that keeps deep nesting away from Yams's recursion, against the
// depth of the tree Yams really builds.
@testable import NXCComposition  // for YAMLLimits.prescanDepth (the build uses -enable-testing)
import Yams

/// A folder that does not exist, so relative `source:` files fail to read instead of
/// touching this machine's files.
private let missingFolder = "/nonexistent/nxc-fuzz"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzComposition(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    // `Composition.load` refuses text that is not UTF-8 before parsing: do the same, so that
    // only inputs a user can really make reach the parser.
    guard let text = String(validating: UnsafeBufferPointer(start: data, count: size), as: UTF8.self) else {
        return -1  // not worth keeping in the corpus
    }
    do {
        let composition = try Composition.parse(text, file: "fuzz/composition.yaml", directory: missingFolder,
                                                defaultName: "fuzz")
        // What later stages read first: every host name of every role.
        for role in composition.roles { _ = role.hostNames() }
    } catch {
        _ = "\(error)"  // messages are built from the input too
    }
    checkPrescan(text)
    return 0
}

/// Limits so tight that a pre-scan which under-counts shows up within the fuzzer's input sizes:
/// the same scanner, at a depth where a few bytes of nesting decide, instead of thousands.
private let tight = YAMLLimits(what: "a fuzz input", maxBytes: 1 << 20, maxDepth: 4, maxNodes: 1 << 16)
/// The deepest nesting `tight.check` lets through.
private let tightPrescanDepth = tight.prescanDepth

/// The pre-scan must never report less than the real depth: text it accepts must not compose
/// into a deeper tree, or a longer text of the same shape would reach Yams's recursion.
private func checkPrescan(_ text: String) {
    guard (try? tight.check(text, file: "fuzz")) != nil, let root = try? Yams.compose(yaml: text) else { return }
    var budget = 100_000  // aliases expand: walk a bounded part of the tree
    let depth = collectionDepth(root, budget: &budget, stop: tightPrescanDepth + 1)
    if depth > tightPrescanDepth {
        // The oracle of this target: a trap is what libFuzzer records as a finding.
        fatalError("YAMLLimits pre-scan accepted text nested \(depth) levels deep (allowed: \(tightPrescanDepth))")
    }
}

/// Collections inside collections, the root collection being level 1 (as YAMLLimits counts);
/// stops at `stop` levels or when `budget` nodes have been visited.
private func collectionDepth(_ node: Node, budget: inout Int, stop: Int) -> Int {
    budget -= 1
    guard budget > 0, stop > 0 else { return 0 }
    var children: [Node] = []
    switch node {
    case .scalar: return 0
    case .sequence(let s): children = Array(s)
    case .mapping(let m): children = m.flatMap { [$0.key, $0.value] }
    @unknown default: return 0
    }
    var deepest = 0
    for child in children where budget > 0 {
        deepest = max(deepest, collectionDepth(child, budget: &budget, stop: stop - 1))
        if deepest + 1 >= stop { break }
    }
    return deepest + 1
}
