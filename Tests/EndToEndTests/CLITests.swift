import Foundation
import XCTest
import NXCBuild

/// The command line without VMs: init, check, flavours, help, errors for missing deployments.
final class CLITests: XCTestCase {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    var dir = ""

    var nxc: String {
        if let b = ProcessInfo.processInfo.environment["NXC_BIN"] { return b }
        return Self.repo + "/.build/debug/nxc"
    }

    override func setUpWithError() throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: nxc), "no nxc binary at \(nxc)")
        dir = NSTemporaryDirectory() + "nxc-cli-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func run(_ args: [String]) throws -> (Int32, String) {
        try Command.status([nxc] + args, timeout: 60)
    }

    func testInitTemplateThenCheck() throws {
        let list = try run(["init", "-t", "list"])
        XCTAssertEqual(list.0, 0)
        XCTAssertTrue(list.1.split(separator: "\n").contains("basic"), list.1)
        let made = try run(["init", "-t", "basic", dir + "/exp"])
        XCTAssertEqual(made.0, 0, made.1)
        let check = try run(["check", dir + "/exp"])
        XCTAssertEqual(check.0, 0, check.1)
        XCTAssertTrue(check.1.hasPrefix("exp: 1 role(s)"), check.1)
        // A second init does not overwrite the user's files.
        let again = try run(["init", "-t", "basic", dir + "/exp"])
        XCTAssertNotEqual(again.0, 0)
        XCTAssertTrue(again.1.contains("exists"), again.1)
        let unknown = try run(["init", "-t", "nope", dir + "/x"])
        XCTAssertNotEqual(unknown.0, 0)
        XCTAssertTrue(unknown.1.contains("unknown template 'nope'"), unknown.1)
    }

    func testCheckReportsFileLineAndKey() throws {
        try Data("roles:\n  client:\n    count: 0\n".utf8).write(to: URL(fileURLWithPath: dir + "/composition.yaml"))
        let r = try run(["check", dir])
        XCTAssertEqual(r.0, 1)
        XCTAssertEqual(r.1.trimmingCharacters(in: .whitespacesAndNewlines),
                       "\(dir)/composition.yaml:3:12: error: roles.client.count: count must be a positive integer, got 0")
        let missing = try run(["check", dir + "/nothing-here"])
        XCTAssertEqual(missing.0, 1)
        XCTAssertTrue(missing.1.contains("cannot read the composition file"), missing.1)
    }

    /// Package sources and role-distribution files are refused before anything runs, with where.
    func testUntrustedSourcesRefusedUpFront() throws {
        let mirror = try run(["build", "--mirror", "deb [trusted=yes] http://example.org/debian", Self.repo + "/compositions/hello",
                              "--project", dir])
        XCTAssertEqual(mirror.0, 64, mirror.1)
        XCTAssertTrue(mirror.1.contains("--mirror: expected an http://, https:// or file:// URL, got 'deb [trusted=yes]"), mirror.1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/build"), "nothing built")
        let made = try run(["init", "-t", "webserver", dir + "/web"])
        XCTAssertEqual(made.0, 0, made.1)
        try Data("server: 1\nclinet: 2\n".utf8).write(to: URL(fileURLWithPath: dir + "/web/roles.yaml"))
        let roles = try run(["start", "-f", "vm-ramdisk", dir + "/web/roles.yaml", "--project", dir + "/web"])
        XCTAssertEqual(roles.0, 1, roles.1)
        XCTAssertTrue(roles.1.contains("\(dir)/web/roles.yaml:2:1: error: clinet: no role 'clinet' in the composition; did you mean 'client'?"), roles.1)
    }

    func testFlavoursListed() throws {
        let r = try run(["flavours"])
        XCTAssertEqual(r.0, 0)
        XCTAssertTrue(r.1.contains("vm-ramdisk") && r.1.contains("ramdisk/qemu"), r.1)
        XCTAssertTrue(r.1.contains("* vm-ramdisk "), "the default is marked: \(r.1)")
        // The options only some methods take are explained with the flavours that take them.
        let help = try run(["start", "--help"])
        XCTAssertEqual(help.0, 0, help.1)
        let flat = help.1.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        XCTAssertTrue(flat.contains("and kexec again (g5k-ramdisk, nfs-store); only contextualise them again, without Kadeploy (g5k-image)."), flat)
        XCTAssertTrue(flat.contains("$OAR_NODEFILE), for g5k-image, g5k-ramdisk, nfs-store, pxe, pxe-nfs-store."), flat)
        let bad = try run(["build", "-f", "floppy", Self.repo + "/compositions/hello", "--project", dir])
        XCTAssertEqual(bad.0, 1)
        XCTAssertTrue(bad.1.contains("unknown flavour 'floppy'") && bad.1.contains("vm-ramdisk"), bad.1)
        // A project's flavour file that does not load is named with its line, not left out silently.
        try FileManager.default.createDirectory(atPath: dir + "/flavours", withIntermediateDirectories: true)
        try Data("name: mine\npakages: []\n".utf8).write(to: URL(fileURLWithPath: dir + "/flavours/mine.yaml"))
        let broken = try run(["flavours", "--project", dir])
        XCTAssertEqual(broken.0, 1, broken.1)
        XCTAssertTrue(broken.1.contains("vm-ramdisk"), broken.1)
        XCTAssertTrue(broken.1.contains("\(dir)/flavours/mine.yaml:2:1: error: pakages: unknown key 'pakages'; did you mean 'packages'?"), broken.1)
    }

    func testCommandsWithoutDeploymentSayWhatToDo() throws {
        for args in [["status", "--project", dir], ["stop", "--project", dir], ["exec", "--project", dir, "server", "--", "true"]] {
            let r = try run(args)
            XCTAssertEqual(r.0, 1, args.joined(separator: " "))
            XCTAssertTrue(r.1.contains("nxc start"), r.1)
        }
        let noCommand = try run(["exec", "--project", dir, "server"])
        XCTAssertNotEqual(noCommand.0, 0)
    }

    func testHelpListsCommands() throws {
        let r = try run(["--help"])
        for c in ["init", "check", "build", "lock", "export", "verify", "start", "exec", "connect", "status", "stop", "flavours"] {
            XCTAssertTrue(r.1.contains("  \(c) "), "help lacks \(c)")
        }
    }
}
