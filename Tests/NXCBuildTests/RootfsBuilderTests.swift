import Foundation
import NXCArchive
import NXCComposition
import XCTest
@testable import NXCBuild

final class RootfsBuilderTests: XCTestCase {
    var dir = ""

    override func setUp() {
        dir = NSTemporaryDirectory() + "nxc-rootfs-test-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// A tree as a normal user's build has it: mmdebstrap's tar unpacked, with the ownership record.
    func unpackedImage() throws -> (root: String, record: TreeOwnership) {
        let src = dir + "/src"
        let fm = FileManager.default
        for d in ["/etc/ssh", "/etc/munge", "/var/log/apt", "/var/lib/dpkg", "/var/cache/apt/archives/partial", "/var/cache/ldconfig",
                  "/var/lib/apt/lists/partial"] {
            try fm.createDirectory(atPath: src + d, withIntermediateDirectories: true)
        }
        var record = TreeOwnership(entries: ["/etc/munge": .init(uid: 100, gid: 101, mode: 0o700),
                                             // As mmdebstrap's unshare mode leaves them.
                                             "/var/cache/apt/archives/partial": .init(uid: 42, gid: 0, mode: 0o700),
                                             "/var/lib/apt/lists/partial": .init(uid: 42, gid: 0, mode: 0o700)])
        for (path, mode) in [("/etc/ssh/ssh_host_ed25519_key", 0o600), ("/etc/ssh/ssh_host_ed25519_key.pub", 0o644),
                             ("/etc/ssh/sshd_config", 0o644), ("/etc/munge/munge.key", 0o400), ("/etc/machine-id", 0o444),
                             ("/var/log/apt/history.log", 0o644), ("/var/log/keep.journal", 0o644),
                             ("/var/lib/dpkg/status", 0o644), ("/var/lib/dpkg/status-old", 0o644),
                             ("/var/cache/apt/pkgcache.bin", 0o644), ("/var/cache/ldconfig/aux-cache", 0o600)] {
            fm.createFile(atPath: src + path, contents: Data("x".utf8))
            record.entries[path] = .init(uid: path.hasPrefix("/etc/munge/") ? 100 : 0, gid: 0, mode: UInt32(mode))
        }
        let tar = dir + "/image.tar"
        let w = try ArchiveWriter(path: tar, format: .pax, filter: .none)
        try w.addTree(src, ownership: record)
        try w.finish()
        let root = dir + "/root"
        try fm.createDirectory(atPath: root, withIntermediateDirectories: false)
        return (root, try TreeOwnership.unpack(archive: tar, into: root))
    }

    /// Scrub works on a tree a normal user unpacked, and keeps its record in step: what it removes is
    /// gone from both, the machine id it writes is root's 0644 as in a build as root.
    func testScrubOfAnUnpackedTreeKeepsTheRecordInStep() throws {
        let (root, unpacked) = try unpackedImage()
        var record: TreeOwnership? = unpacked
        try RootfsBuilder.scrub(root, ownership: &record)
        let fm = FileManager.default
        for gone in ["/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_ed25519_key.pub", "/etc/munge/munge.key",
                     "/var/log/apt/history.log", "/var/lib/dpkg/status-old", "/var/cache/apt/pkgcache.bin",
                     "/var/cache/ldconfig/aux-cache"] {
            XCTAssertFalse(fm.fileExists(atPath: root + gone), gone)
            XCTAssertNil(record?.entries[gone], gone)
        }
        for kept in ["/etc/ssh/sshd_config", "/var/log/keep.journal", "/var/lib/dpkg/status"] {
            XCTAssertTrue(fm.fileExists(atPath: root + kept), kept)
            XCTAssertNotNil(record?.entries[kept], kept)
        }
        XCTAssertEqual(record?.entries["/etc/machine-id"], TreeOwnership.Entry(uid: 0, gid: 0, mode: 0o644))
        XCTAssertEqual(fm.contents(atPath: root + "/etc/machine-id"), Data())
        XCTAssertEqual(record?.entries["/etc/munge"]?.uid, 100)
        // A build as root leaves them root's (its apt cannot drop privileges in root's store).
        XCTAssertEqual(record?.entries["/var/cache/apt/archives/partial"], TreeOwnership.Entry(uid: 0, gid: 0, mode: 0o700))
        XCTAssertEqual(record?.entries["/var/lib/apt/lists/partial"], TreeOwnership.Entry(uid: 0, gid: 0, mode: 0o700))
    }

    /// A build as root has no record; its machine id gets the same mode whatever the umask.
    func testScrubAsRootSetsTheMachineIdMode() throws {
        let root = dir + "/plain"
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/var/lib/apt/lists/partial", withIntermediateDirectories: true)
        chown(root + "/var/lib/apt/lists/partial", 42, 0)
        var none: TreeOwnership?
        let old = umask(0o077)
        defer { umask(old) }
        try RootfsBuilder.scrub(root, ownership: &none)
        var st = stat()
        XCTAssertEqual(stat(root + "/etc/machine-id", &st), 0)
        XCTAssertEqual(st.st_mode & 0o7777, 0o644)
        XCTAssertEqual(stat(root + "/var/lib/apt/lists/partial", &st), 0)
        XCTAssertEqual([st.st_uid, st.st_gid], [0, 0])
        XCTAssertEqual(st.st_mode & 0o7777, 0o700)
        XCTAssertNil(none)
    }

    /// The error the issue saw (`NSCocoaErrorDomain Code=513` removing a host key of a tree owned by
    /// subordinate IDs) now says what nxc was doing, on which path, in the system's words.
    func testFileErrorsNameThePathAndTheStep() {
        let path = "/store/.tmp-x/root/etc/ssh/ssh_host_ed25519_key.pub"
        let e = BuildFileError("removing an SSH host key the build made", path: path,
                               error: CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path]))
        XCTAssertEqual(e.description, "error: removing an SSH host key the build made: \(path): \(String(cString: strerror(EACCES)))")
        let posix = BuildFileError("x", path: "/p", error: NSError(domain: NSPOSIXErrorDomain, code: Int(ENOSPC)))
        XCTAssertTrue(posix.description.hasSuffix(String(cString: strerror(ENOSPC))), posix.description)
        let other = BuildFileError("x", path: "/p", error: CocoaError(.fileReadCorruptFile))
        XCTAssertFalse(other.description.contains("NSCocoaErrorDomain"), other.description)
        XCTAssertTrue(other.description.contains("/p"), other.description)
    }

    func testMmdebstrapArgumentsPerMode() {
        let req = RootfsRequest(distribution: Distribution(), mirror: "http://deb.debian.org/debian",
                                basePackages: ["systemd-sysv"], packages: [])
        let rootArgv = RootfsBuilder.mmdebstrapArguments(req, packages: ["systemd-sysv"], mode: .root, target: "/s/root", preferences: nil)
        XCTAssertEqual(rootArgv.first, "mmdebstrap")
        XCTAssertTrue(rootArgv.contains("--mode=root"))
        XCTAssertFalse(rootArgv.contains("--format=tar"))
        XCTAssertEqual(Array(rootArgv.suffix(3)), ["bookworm", "/s/root", "http://deb.debian.org/debian"])
        let user = RootfsBuilder.mmdebstrapArguments(req, packages: ["systemd-sysv"], mode: .unshare, target: "/s/root.tar", preferences: "/tmp/p")
        XCTAssertEqual(user.first, "mmdebstrap")
        XCTAssertTrue(user.contains("--mode=unshare"))
        XCTAssertTrue(user.contains("--format=tar"))
        XCTAssertTrue(user.contains("--setup-hook=upload /tmp/p /etc/apt/preferences.d/nxc-lock"))
        XCTAssertEqual(Array(user.suffix(3)), ["bookworm", "/s/root.tar", "http://deb.debian.org/debian"])
        let fake = RootfsBuilder.mmdebstrapArguments(req, packages: [], mode: .fakechroot, target: "/s/root.tar", preferences: nil)
        XCTAssertEqual(Array(fake.prefix(4)), ["fakechroot", "fakeroot", "mmdebstrap", "--mode=fakechroot"])
        XCTAssertFalse(fake.contains { $0.hasPrefix("--include") })
    }
}
