import Foundation
import XCTest
@testable import NXCDeployment

final class ProjectTests: XCTestCase {
    var dir = ""

    override func setUp() {
        dir = NSTemporaryDirectory() + "nxc-project-test-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// The new bytes replace the old in one rename, with the mode asked for whatever the umask,
    /// and what a killed writer of the same file left is removed; a live writer's file is not.
    func testWriteAtomicallyReplacesAndCleansUp() throws {
        let fm = FileManager.default
        let path = dir + "/deploy/x.json"
        try writeAtomically(Data("one".utf8), to: path)
        let stale = dir + "/deploy/.x.json.tmp-999999", live = dir + "/deploy/.x.json.tmp-1", other = dir + "/deploy/.y.json.tmp-999999"
        for p in [stale, live, other] { fm.createFile(atPath: p, contents: Data("half".utf8)) }
        let old = umask(0o077)
        defer { umask(old) }
        try writeAtomically(Data("two".utf8), to: path, mode: 0o755)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "two")
        XCTAssertEqual(try fm.attributesOfItem(atPath: path)[.posixPermissions] as? Int, 0o755)
        XCTAssertFalse(fm.fileExists(atPath: stale))
        XCTAssertTrue(fm.fileExists(atPath: live), "PID 1 is alive: not ours to remove")
        XCTAssertTrue(fm.fileExists(atPath: other), "only this file's leftovers are looked at")
        XCTAssertFalse(fm.fileExists(atPath: dir + "/deploy/.x.json.tmp-\(getpid())"))
    }

    /// A write that cannot happen leaves the old file and no temporary file.
    func testFailedWriteLeavesTheOldFile() throws {
        let path = dir + "/x.json"
        try writeAtomically(Data("one".utf8), to: path)
        try FileManager.default.createDirectory(atPath: dir + "/.x.json.tmp-\(getpid())", withIntermediateDirectories: true)
        XCTAssertThrowsError(try writeAtomically(Data("two".utf8), to: path)) { e in
            XCTAssertTrue("\(e)".contains(path), "\(e)")
        }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "one")
    }
}
