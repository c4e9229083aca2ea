import Foundation
import XCTest
import Yams
@testable import NXCComposition

/// Replays the inputs the fuzz targets kept (Tests/fuzz/regressions/TARGET/) without sanitizers:
/// each must parse or throw. Compositions go through the whole parser, as `nxc check` runs it.
/// Locks, role-distribution files and flavour files go through the YAML step they share with
/// compositions, `YAMLLimits.compose` with their own limits, where their crashes were (their
/// parsers live in modules this test target does not link; Tests/fuzz/run.sh replays them whole).
/// Inputs listed in a folder's `known-crashes` still crash (a defect not yet fixed): they are not
/// run, and `testNoKnownCrashIsLeft` is skipped, naming them.
final class FuzzRegressionTests: XCTestCase {
    /// Tests/fuzz/regressions, found from this file (the test target copies no resources).
    static let regressions = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("fuzz/regressions")

    /// The targets replayed here, and what each input goes through.
    static let replays: [(target: String, replay: @Sendable (String, String) throws -> Void)] = [
        ("composition", { text, file in
            _ = try Composition.parse(text, file: file, directory: "/nonexistent/nxc-fuzz", defaultName: "fuzz")
        }),
        ("lock", { text, file in _ = try YAMLLimits.lock.compose(text, file: file) }),
        ("role-distribution", { text, file in _ = try YAMLLimits.roleDistribution.compose(text, file: file) }),
        ("flavour", { text, file in _ = try YAMLLimits.flavour.compose(text, file: file) }),
    ]

    /// File name → why it still crashes, from `known-crashes` ("FILE reason…" per line).
    static func knownCrashes(_ folder: URL) throws -> [String: String] {
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

    /// The kept inputs of a folder, without its README and list.
    static func inputs(_ folder: URL) throws -> [URL] {
        guard FileManager.default.fileExists(atPath: folder.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { !$0.lastPathComponent.hasPrefix("README") && $0.lastPathComponent != "known-crashes" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    func testRegressionInputsParseOrThrow() throws {
        var replayed = 0
        for (target, replay) in Self.replays {
            let folder = Self.regressions.appendingPathComponent(target)
            let known = try Self.knownCrashes(folder)
            for input in try Self.inputs(folder) where known[input.lastPathComponent] == nil {
                // Every loader refuses text that is not UTF-8 before parsing; so do the fuzz targets.
                guard let text = String(data: try Data(contentsOf: input), encoding: .utf8) else { continue }
                let file = "\(target)/\(input.lastPathComponent)"
                do {
                    try replay(text, file)
                } catch let error as CompositionError {
                    XCTAssertEqual(error.file, file, "an error must name the file: \(error)")
                } catch let error as YAMLLimitError {
                    XCTAssertEqual(error.file, file, "an error must name the file: \(error)")
                } catch is YamlError {
                    // Yams's own syntax errors: each parser words them with the file and line.
                }
                replayed += 1
            }
        }
        XCTAssertGreaterThan(replayed, 0, "no inputs replayed from \(Self.regressions.path)")
    }

    func testNoKnownCrashIsLeft() throws {
        var left: [String] = []
        for (target, _) in Self.replays {
            let folder = Self.regressions.appendingPathComponent(target)
            for (name, reason) in try Self.knownCrashes(folder).sorted(by: { $0.key < $1.key }) {
                XCTAssertTrue(FileManager.default.fileExists(atPath: folder.appendingPathComponent(name).path),
                              "\(target)/known-crashes lists \(name), which is not in \(folder.path)")
                left.append("\(target)/\(name) (\(reason))")
            }
        }
        guard left.isEmpty else {
            throw XCTSkip("inputs that still crash, not replayed: " + left.joined(separator: "; "))
        }
    }
}
