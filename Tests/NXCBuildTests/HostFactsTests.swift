import Foundation
import XCTest
@testable import NXCBuild

/// Whether and how a normal user can build, decided from facts in milliseconds, with errors that
/// name the cause and the fix (before: mmdebstrap's bare "cannot find newuidmap", or a raw
/// Foundation error minutes later).
final class HostFactsTests: XCTestCase {
    static let ready = UnprivilegedFacts(user: "alice", programs: ["newuidmap", "newgidmap", "unshare"],
                                         sysctls: ["user.max_user_namespaces": "63000"],
                                         subuid: "bob:100000:65536\nalice:165536:65536\n", subgid: "alice:165536:65536\n")

    func problem(_ f: UnprivilegedFacts) -> String {
        do {
            let got = try HostFacts.rootfsMode(f, isRoot: false)
            XCTFail("expected an error, got \(got.mode)")
            return ""
        } catch {
            XCTAssertTrue(error is HostProblem, "\(error)")
            return "\(error)"
        }
    }

    func testRootAndAReadyUser() throws {
        var bare = Self.ready
        bare.programs = []
        XCTAssertEqual(try HostFacts.rootfsMode(bare, isRoot: true).mode, .root)
        let user = try HostFacts.rootfsMode(Self.ready, isRoot: false)
        XCTAssertEqual(user.mode, .unshare)
        XCTAssertNil(user.note)
    }

    func testNoUidmap() {
        for tool in ["newuidmap", "newgidmap"] {
            var f = Self.ready
            f.programs.remove(tool)
            let text = problem(f)
            XCTAssertTrue(text.contains("'\(tool)' is not installed"), text)
            XCTAssertTrue(text.contains("install it with: apt-get install uidmap"), text)
        }
    }

    func testUserNamespacesOffNameTheSysctlAndFakechroot() {
        for (name, off, on) in [("kernel.unprivileged_userns_clone", "0", "1"), ("user.max_user_namespaces", "0", "15000"),
                                ("kernel.apparmor_restrict_unprivileged_userns", "1", "0")] {
            var f = Self.ready
            f.sysctls[name] = off
            let text = problem(f)
            XCTAssertTrue(text.contains("\(name) = \(off)"), text)
            XCTAssertTrue(text.contains("sysctl -w \(name)=\(on)"), text)
            XCTAssertTrue(text.contains("apt-get install fakechroot fakeroot"), text)
            XCTAssertTrue(text.contains("fakechroot mode"), text)
        }
        var probe = Self.ready
        probe.namespaceFailure = "unshare: unshare failed: Operation not permitted"
        let text = problem(probe)
        XCTAssertTrue(text.contains("Operation not permitted"), text)
        XCTAssertTrue(text.contains("user.max_user_namespaces"), text)
        XCTAssertTrue(text.contains("fakechroot"), text)
    }

    func testNoSubordinateRange() {
        for (subuid, subgid, file) in [("", "alice:165536:65536\n", "/etc/subuid"),
                                       ("bob:100000:65536\n", "alice:165536:65536\n", "/etc/subuid"),
                                       // mmdebstrap looks the user up by name only.
                                       ("1000:100000:65536\n", "alice:165536:65536\n", "/etc/subuid"),
                                       ("alice:165536:65536\n", "", "/etc/subgid")] {
            var f = Self.ready
            f.subuid = subuid
            f.subgid = subgid
            let text = problem(f)
            XCTAssertTrue(text.contains("\(file) has no range of subordinate IDs for user 'alice'"), text)
            XCTAssertTrue(text.contains("usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice"), text)
        }
        var unreadable = Self.ready
        unreadable.subgid = nil
        XCTAssertTrue(problem(unreadable).contains("cannot read /etc/subgid"))
        var small = Self.ready
        small.subuid = "alice:165536:1000\n"
        let text = problem(small)
        XCTAssertTrue(text.contains("gives user 'alice' 1000 subordinate IDs"), text)
        XCTAssertTrue(text.contains("usermod --add-subuids 165536-231071 alice"), text)
    }

    /// Where unshare mode cannot work and fakechroot can, the build uses it and says why.
    func testFakechrootFallbackSaysWhy() throws {
        var f = Self.ready
        f.sysctls["kernel.unprivileged_userns_clone"] = "0"
        f.programs.formUnion(["fakechroot", "fakeroot"])
        let got = try HostFacts.rootfsMode(f, isRoot: false)
        XCTAssertEqual(got.mode, .fakechroot)
        XCTAssertTrue(got.note?.contains("kernel.unprivileged_userns_clone") == true, got.note ?? "")
    }

    func testRequestedMode() throws {
        var f = Self.ready
        f.requested = "fakechroot"
        XCTAssertTrue(problem(f).contains("apt-get install fakechroot fakeroot"))
        f.programs.formUnion(["fakechroot", "fakeroot"])
        XCTAssertEqual(try HostFacts.rootfsMode(f, isRoot: false).mode, .fakechroot)
        f.requested = "unshare"
        XCTAssertEqual(try HostFacts.rootfsMode(f, isRoot: false).mode, .unshare)
        f.programs.remove("newuidmap")
        XCTAssertTrue(problem(f).contains("apt-get install uidmap"), "no silent switch when a mode is asked for")
        f.requested = "chroot"
        XCTAssertTrue(problem(f).contains("NXC_ROOTFS_MODE is 'chroot'"))
    }

    func testSubordinateRangeParsing() {
        let text = "# comment\nbob:1:2\nalice:100000:65536\nalice:300000:65536\nbroken\n"
        XCTAssertEqual(HostFacts.subordinateRange(user: "alice", in: text)?.start, 100000)
        XCTAssertEqual(HostFacts.subordinateRange(user: "alice", in: text)?.count, 65536)
        XCTAssertNil(HostFacts.subordinateRange(user: "carol", in: text))
        XCTAssertNil(HostFacts.subordinateRange(user: "bob", in: "bob:x:y\n"))
    }

    func testGatherReadsTheSysctlsAndFiles() throws {
        let root = NSTemporaryDirectory() + "nxc-hostfacts-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/proc/sys/kernel", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        try Data("0\n".utf8).write(to: URL(fileURLWithPath: root + "/proc/sys/kernel/unprivileged_userns_clone"))
        try Data("alice:100000:65536\n".utf8).write(to: URL(fileURLWithPath: root + "/etc/subuid"))
        let f = HostFacts.gather(root: root, environment: ["PATH": root + "/bin", "NXC_ROOTFS_MODE": "unshare"])
        XCTAssertEqual(f.sysctls, ["kernel.unprivileged_userns_clone": "0"])
        XCTAssertEqual(f.subuid, "alice:100000:65536\n")
        XCTAssertNil(f.subgid)
        XCTAssertEqual(f.programs, [])
        XCTAssertEqual(f.requested, "unshare")
    }
}
