import Foundation
import XCTest
@testable import NXCDeploy
@testable import NXCDeployment
@testable import NXCTestbed
import NXCBuild

/// g5k-ramdisk staging on reserved hosts: SSH argv, and the remote snippets run locally against
/// hostile bundle folders (a link, a folder of another user, one others may write into).
final class KexecStartTests: XCTestCase {
    func env(reuse: Bool = false) -> TestbedSSH {
        TestbedSSH(identity: DeployTests.identity, options: .init(sshUser: nil, sshOptions: [], reuse: reuse), preKnownHosts: "/r/pre",
                          postKnownHosts: "/r/post", controlDir: "/c")
    }

    func testSSHPutsDoubleDashBeforeTheHost() {
        let host = TestbedHost(name: "node-1", port: 2222, user: "alice")
        for afterKexec in [false, true] {
            let argv = env().argv(host, afterKexec: afterKexec, command: ["-v", "x"])
            XCTAssertEqual(Array(argv.suffix(3)), ["--", "node-1", "-v x"], "\(argv)")
            XCTAssertEqual(argv.filter { $0 == "--" }.count, 1, "\(argv)")
        }
        let close = env().closeMasterArgv(host)
        XCTAssertEqual(Array(close.suffix(2)), ["--", "node-1"], "\(close)")
        XCTAssertTrue(close.contains("-O"), "\(close)")
    }

    /// The bundle lives in a folder only root may change, never a fixed name under /tmp.
    func testRemoteDirectoryIsRootsOwn() {
        XCTAssertFalse(KexecStart.remoteDirectory.hasPrefix("/tmp"), KexecStart.remoteDirectory)
        XCTAssertEqual(KexecStart.remoteDirectory, "/var/lib/nxc/bundle")
    }

    /// A fresh host: the check makes the folder and its parent, private to the user that runs it.
    func testCheckCreatesPrivateFolders() throws {
        let work = try Hostile.scratch()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let dir = work + "/lib/nxc/bundle"
        try FileManager.default.createDirectory(atPath: work + "/lib", withIntermediateDirectories: true)
        let (status, out) = try Command.status(["sh", "-c", KexecScript.check, "sh", dir, "", "1", "2", "3"], timeout: 30)
        XCTAssertEqual(status, 0, out)
        for d in [work + "/lib/nxc", dir] {
            var st = stat()
            XCTAssertEqual(lstat(d, &st), 0, d)
            XCTAssertEqual(st.st_mode & 0o7777, 0o700, d)
            XCTAssertEqual(st.st_uid, geteuid(), d)
        }
    }

    /// Each hostile layout is refused by every snippet that touches the folder, and nothing is
    /// written through it.
    func testHostileFoldersAreRefused() throws {
        let work = try Hostile.scratch()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let fm = FileManager.default
        let elsewhere = work + "/elsewhere"
        try fm.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
        var cases: [(name: String, dir: String, fragment: String)] = []

        // The bundle folder is a link.
        try fm.createDirectory(atPath: work + "/a/nxc", withIntermediateDirectories: true)
        chmod(work + "/a/nxc", 0o700)
        try fm.createSymbolicLink(atPath: work + "/a/nxc/bundle", withDestinationPath: elsewhere)
        cases.append(("link", work + "/a/nxc/bundle", "symbolic link"))
        // A dangling link where the folder would be made.
        try fm.createDirectory(atPath: work + "/b/nxc", withIntermediateDirectories: true)
        chmod(work + "/b/nxc", 0o700)
        try fm.createSymbolicLink(atPath: work + "/b/nxc/bundle", withDestinationPath: elsewhere + "/new")
        cases.append(("dangling link", work + "/b/nxc/bundle", "symbolic link"))
        // The parent is a link.
        try fm.createDirectory(atPath: work + "/c", withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: work + "/c/nxc", withDestinationPath: elsewhere)
        cases.append(("parent link", work + "/c/nxc/bundle", "symbolic link"))
        // Others may write into the parent.
        try fm.createDirectory(atPath: work + "/d/nxc/bundle", withIntermediateDirectories: true)
        chmod(work + "/d/nxc/bundle", 0o700)
        chmod(work + "/d/nxc", 0o777)
        cases.append(("writable parent", work + "/d/nxc/bundle", "writable by other users"))
        // Another user owns the folder (needs root to set up).
        if geteuid() == 0 {
            try fm.createDirectory(atPath: work + "/e/nxc/bundle", withIntermediateDirectories: true)
            chmod(work + "/e/nxc", 0o700)
            chmod(work + "/e/nxc/bundle", 0o700)
            XCTAssertEqual(chown(work + "/e/nxc/bundle", 65534, 65534), 0)
            cases.append(("owned by nobody", work + "/e/nxc/bundle", "owned by uid 65534"))
            try fm.createDirectory(atPath: work + "/f/nxc/bundle", withIntermediateDirectories: true)
            chmod(work + "/f/nxc", 0o700)
            XCTAssertEqual(chown(work + "/f/nxc", 65534, 65534), 0)
            cases.append(("parent owned by nobody", work + "/f/nxc/bundle", "owned by uid 65534"))
        }

        let tar = work + "/push.tar"
        try Data("not read".utf8).write(to: URL(fileURLWithPath: tar))
        let doc = work + "/doc.json"
        try Data("{}".utf8).write(to: URL(fileURLWithPath: doc))
        for c in cases {
            for (snippet, args, input) in [("check", [c.dir, "1", "1", "1"], nil as String?),
                                           ("receive", [c.dir], tar), ("deployAndKexec", [c.dir, "server"], doc)] {
                let script = ["check": KexecScript.check, "receive": KexecScript.receive, "deployAndKexec": KexecScript.deployAndKexec][snippet] ?? ""
                let (status, out) = try Command.status(["sh", "-c", script, "sh"] + args, timeout: 30, inputFile: input)
                XCTAssertNotEqual(status, 0, "\(c.name), \(snippet): \(out)")
                XCTAssertTrue(out.contains(c.fragment), "\(c.name), \(snippet): \(out)")
                XCTAssertFalse(out.contains("@arch"), "\(c.name), \(snippet): no fact before the folder is checked: \(out)")
            }
            XCTAssertEqual(try fm.contentsOfDirectory(atPath: elsewhere), [], "\(c.name): written through a link")
        }
    }

    /// Staging runs as root: directly when the SSH user is root, else through `sudo -n`, which keeps
    /// SSH_CONNECTION (the check reports it) and gets the command after `--`.
    func testAsRootUsesSudoForOtherUsers() throws {
        let work = try Hostile.scratch()
        defer { try? FileManager.default.removeItem(atPath: work) }
        try Hostile.recorder("sudo", in: work)
        let id = work + "/id"
        try Data("#!/bin/sh\necho 1000\n".utf8).write(to: URL(fileURLWithPath: id))
        chmod(id, 0o755)
        let env = ["PATH": work + ":/usr/bin:/bin", "SSH_CONNECTION": "10.0.0.1 5000 10.0.0.2 22"]
        let argv = KexecStart.asRoot + ["sh", "-c", "echo hi", "sh"]
        let (status, out) = try Command.status(argv, environment: env, timeout: 30)
        XCTAssertEqual(status, 0, out)
        XCTAssertEqual(Hostile.calls("sudo", in: work),
                       [["-n", "--", "env", "SSH_CONNECTION=10.0.0.1 5000 10.0.0.2 22", "sh", "-c", "echo hi", "sh"]])
        if geteuid() == 0 {
            let (st, direct) = try Command.status(KexecStart.asRoot + ["sh", "-c", "echo as-root"], timeout: 30)
            XCTAssertEqual(st, 0)
            XCTAssertEqual(direct, "as-root\n")
        }
    }
}
