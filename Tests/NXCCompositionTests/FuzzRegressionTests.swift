import Foundation
import XCTest
@testable import NXCComposition

/// Replays the inputs the composition fuzz target kept (Tests/fuzz/regressions/composition/)
/// through the parser as `nxc check` runs it, without sanitizers: each must parse or throw.
/// Inputs listed in that folder's `known-crashes` still crash the parser (a defect not yet
/// fixed): they are not run, and `testNoKnownCrashIsLeft` is skipped, naming them.
final class FuzzRegressionTests: XCTestCase {
    /// Tests/fuzz/regressions/composition, found from this file (the test target copies no resources).
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("fuzz/regressions/composition")

    /// File name → why it still crashes, from `known-crashes` ("FILE reason…" per line).
    static func knownCrashes() throws -> [String: String] {
        let list = folder.appendingPathComponent("known-crashes")
        guard FileManager.default.fileExists(atPath: list.path) else { return [:] }
        var known: [String: String] = [:]
        for line in try String(contentsOf: list, encoding: .utf8).split(separator: "\n") {
            let words = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
            guard let file = words.first, !file.hasPrefix("#") else { continue }
            known[String(file)] = words.count > 1 ? words[1].trimmingCharacters(in: .whitespaces) : "no reason given"
        }
        return known
    }

    /// The kept inputs, without the folder's README and list.
    static func inputs() throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { !$0.lastPathComponent.hasPrefix("README") && $0.lastPathComponent != "known-crashes" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    func testRegressionInputsParseOrThrow() throws {
        let known = try Self.knownCrashes()
        let inputs = try Self.inputs()
        XCTAssertFalse(inputs.isEmpty, "no inputs in \(Self.folder.path)")
        for input in inputs where known[input.lastPathComponent] == nil {
            let data = try Data(contentsOf: input)
            // Composition.load refuses text that is not UTF-8 before parsing; so does the fuzz target.
            guard let text = String(data: data, encoding: .utf8) else { continue }
            do {
                _ = try Composition.parse(text, file: input.lastPathComponent, directory: "/nonexistent/nxc-fuzz",
                                          defaultName: "fuzz")
            } catch let error as CompositionError {
                XCTAssertEqual(error.file, input.lastPathComponent, "an error must name the file: \(error)")
            }
        }
    }

    func testNoKnownCrashIsLeft() throws {
        let known = try Self.knownCrashes()
        for name in known.keys {
            XCTAssertTrue(FileManager.default.fileExists(atPath: Self.folder.appendingPathComponent(name).path),
                          "known-crashes lists \(name), which is not in \(Self.folder.path)")
        }
        guard known.isEmpty else {
            throw XCTSkip("inputs that still crash the composition parser, not replayed: "
                + known.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value))" }.joined(separator: "; "))
        }
    }
}
