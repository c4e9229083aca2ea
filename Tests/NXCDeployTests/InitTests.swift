import Foundation
import XCTest
@testable import NXCDeploy
@testable import NXCDeployment

/// `nxc init` (ProjectTemplate): a project appears whole or not at all.
final class InitTests: XCTestCase {
    var dir = ""
    var template: String { dir + "/templates/web" }

    override func setUp() {
        dir = NSTemporaryDirectory() + "nxc-init-test-\(UUID().uuidString)"
        let fm = FileManager.default
        try? fm.createDirectory(atPath: template + "/files", withIntermediateDirectories: true)
        fm.createFile(atPath: template + "/composition.yaml", contents: Data("name: web\nroles: {server: {}}\n".utf8))
        fm.createFile(atPath: template + "/index.html", contents: Data("hello\n".utf8))
        fm.createFile(atPath: template + "/files/run.sh", contents: Data("#!/bin/sh\n".utf8), attributes: [.posixPermissions: 0o755])
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func list(_ path: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
    }

    func testNewFolderGetsTheWholeTemplate() throws {
        let target = dir + "/a/b/project"
        let names = try ProjectTemplate.instantiate(template: template, into: target)
        XCTAssertEqual(names, ["composition.yaml", "files", "index.html"])
        XCTAssertEqual(list(target), ["composition.yaml", "files", "index.html"])
        XCTAssertEqual(try String(contentsOfFile: target + "/index.html", encoding: .utf8), "hello\n")
        let mode = try FileManager.default.attributesOfItem(atPath: target + "/files/run.sh")[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o755)
        XCTAssertEqual(list(dir + "/a/b"), ["project"], "no temporary folder left beside it")
    }

    func testExistingFolderKeepsItsFilesAndGetsTheTemplate() throws {
        let target = dir + "/existing"
        try FileManager.default.createDirectory(atPath: target + "/.git", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: target + "/notes.txt", contents: Data("mine".utf8))
        try ProjectTemplate.instantiate(template: template, into: target)
        XCTAssertEqual(list(target), [".git", "composition.yaml", "files", "index.html", "notes.txt"])
    }

    /// A file of the template already there: refused before anything is copied.
    func testRefusesToOverwriteBeforeCopyingAnything() throws {
        let target = dir + "/existing"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: target + "/index.html", contents: Data("mine".utf8))
        XCTAssertThrowsError(try ProjectTemplate.instantiate(template: template, into: target)) { e in
            XCTAssertTrue("\(e)".contains(target + "/index.html"), "\(e)")
            XCTAssertTrue("\(e)".contains("not overwriting"), "\(e)")
        }
        XCTAssertEqual(list(target), ["index.html"])
        XCTAssertEqual(try String(contentsOfFile: target + "/index.html", encoding: .utf8), "mine")
    }

    /// A copy that fails half-way (here on a FIFO, after composition.yaml and index.html were
    /// copied) leaves no project, and no temporary folder, neither in a new nor in an existing folder.
    func testFailureMidCopyLeavesNothing() throws {
        XCTAssertEqual(mkfifo(template + "/zz-fifo", 0o644), 0)
        let fresh = dir + "/fresh"
        XCTAssertThrowsError(try ProjectTemplate.instantiate(template: template, into: fresh)) { e in
            XCTAssertTrue("\(e)".contains("zz-fifo"), "\(e)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: fresh))
        XCTAssertEqual(list(dir), ["templates"])
        let existing = dir + "/existing"
        try FileManager.default.createDirectory(atPath: existing, withIntermediateDirectories: true)
        XCTAssertThrowsError(try ProjectTemplate.instantiate(template: template, into: existing))
        XCTAssertEqual(list(existing), [])
    }

    /// What a killed `nxc init` left (its temporary folder, PID gone) is removed by the next one.
    func testLeftoversOfAKilledInitAreRemoved() throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/.project.tmp-999999/files", withIntermediateDirectories: true)
        try ProjectTemplate.instantiate(template: template, into: dir + "/project")
        XCTAssertEqual(list(dir), ["project", "templates"])
        let existing = dir + "/existing"
        try fm.createDirectory(atPath: existing + "/.nxc-init.tmp-999999", withIntermediateDirectories: true)
        try ProjectTemplate.instantiate(template: template, into: existing)
        XCTAssertEqual(list(existing), ["composition.yaml", "files", "index.html"])
    }

    func testTemplateWithoutCompositionIsRefused() throws {
        try FileManager.default.removeItem(atPath: template + "/composition.yaml")
        XCTAssertThrowsError(try ProjectTemplate.instantiate(template: template, into: dir + "/p")) { e in
            XCTAssertTrue("\(e)".contains("no composition.yaml"), "\(e)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/p"))
    }
}
