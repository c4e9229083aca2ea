import Foundation
import NXCDeploy
@testable import NXCDeployment
import XCTest
@testable import NXCFlavours

/// BuildPipeline builds into `Project.buildDirectory(composition:flavour: flavour.name)` and swaps
/// `.<name>.tmp-PID` / `.<name>.old-PID` beside it: whatever flavour it could load, those stay in
/// `build/<composition>/`.
final class BuildDirectoryTests: XCTestCase {
    func assertInsideBuild(_ project: String, _ name: String, file: StaticString = #filePath, line: UInt = #line) {
        let p = Project(directory: project)
        let final = p.buildDirectory(composition: "c", flavour: name)
        let parent = project + "/build/c"
        for path in [final, "\(parent)/.\(name).tmp-1", "\(parent)/.\(name).old-1"] {
            let std = URL(fileURLWithPath: path).standardizedFileURL.path
            XCTAssertEqual((std as NSString).deletingLastPathComponent, parent, "\(name) → \(std)", file: file, line: line)
        }
        XCTAssertEqual((final as NSString).lastPathComponent, name, file: file, line: line)
    }

    func testEveryLoadableFlavourBuildsInsideBuild() throws {
        let scratch = NSTemporaryDirectory() + "nxc-builddir-\(getpid())-\(UUID().uuidString)"
        let dir = scratch + "/flavours"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        for f in ["docker", "g5k-image", "g5k-ramdisk", "vm-ramdisk"] {
            assertInsideBuild(scratch, try Flavour.load(path: FlavourTests.repo + "/flavours/\(f).yaml").name)
        }
        // Names a file could carry or a caller could pass, hostile and not: random words over an
        // alphabet of path characters, plus the classics.
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("ab-./\\~\n Z0")
        var candidates = ["..", ".", "../..", "../../x", "/", "/tmp/x", "x/..", "~", "a\u{0}b", "build", "-", "x-"]
        for _ in 0..<400 {
            candidates.append(String((0..<Int.random(in: 1...6, using: &rng)).map { _ in alphabet.randomElement(using: &rng) ?? "a" }))
        }
        var loaded = 0
        for name in candidates {
            // As written in a file called f.yaml, and as asked for with -f.
            let yaml = "name: \"\(name.unicodeScalars.map { $0.escaped(asASCII: true) }.joined().replacingOccurrences(of: "\\'", with: "'"))\"\nartefact: ramdisk\nstart: qemu\n"
            try Data(yaml.utf8).write(to: URL(fileURLWithPath: dir + "/f.yaml"))
            if let f = try? Flavour.load(path: dir + "/f.yaml") {
                XCTAssertEqual(f.name, "f", "a file called f.yaml loads only as flavour f, not '\(name)'")
                assertInsideBuild(scratch, f.name)
            }
            if !name.contains("/"), !name.contains("\u{0}"), !name.isEmpty, name != ".", name != ".." {
                try? Data("name: \(name)\nartefact: ramdisk\nstart: qemu\n".utf8).write(to: URL(fileURLWithPath: "\(dir)/\(name).yaml"))
            }
            if let f = try? Flavour.named(name, project: scratch) {
                loaded += 1
                XCTAssertEqual(f.name, name)
                assertInsideBuild(scratch, f.name)
            }
        }
        XCTAssertGreaterThan(loaded, 0, "some plain names load")
    }
}
