import Foundation
import XCTest
@testable import NXCArchive
import CArchive

final class ArchiveTests: XCTestCase {
    var dir = ""

    override func setUp() {
        dir = NSTemporaryDirectory() + "nxc-archive-test-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func write(_ path: String, filter: ArchiveFilter, format: ArchiveFormat = .cpioNewc) throws {
        let w = try ArchiveWriter(path: path, format: format, filter: filter, mtime: 1_700_000_000)
        try w.addDirectory("/etc", mode: 0o755)
        try w.addDirectory("/etc/nxc", mode: 0o700, uid: 0, gid: 0)
        try w.addFile("/etc/nxc/role", bytes: Array("server\n".utf8), mode: 0o640, uid: 0, gid: 42)
        try w.addSymlink("/etc/localtime", target: "/usr/share/zoneinfo/UTC")
        try w.addDevice("/dev/console", character: true, major: 5, minor: 1, mode: 0o600)
        try w.addFile("/big", bytes: [UInt8](repeating: 7, count: 3_000_000), mode: 0o755, uid: 1000, gid: 1000)
        try w.finish()
    }

    func testEveryEntryReadsBack() throws {
        for (name, filter) in [("a.cpio", ArchiveFilter.none), ("a.cpio.gz", .gzip), ("a.cpio.zst", .zstd(level: 3))] {
            let p = dir + "/" + name
            try write(p, filter: filter)
            let entries = try ArchiveReader.entries(path: p)
            XCTAssertEqual(entries.map(\.path), ["etc", "etc/nxc", "etc/nxc/role", "etc/localtime", "dev/console", "big"], name)
            let role = try XCTUnwrap(entries.first { $0.path == "etc/nxc/role" })
            XCTAssertEqual(role.kind, .file)
            XCTAssertEqual(role.mode, 0o640)
            XCTAssertEqual(role.gid, 42)
            XCTAssertEqual(String(decoding: role.data, as: UTF8.self), "server\n")
            XCTAssertEqual(role.mtime, 1_700_000_000)
            let nxcDir = try XCTUnwrap(entries.first { $0.path == "etc/nxc" })
            XCTAssertEqual(nxcDir.kind, .directory)
            XCTAssertEqual(nxcDir.mode, 0o700)
            let link = try XCTUnwrap(entries.first { $0.path == "etc/localtime" })
            XCTAssertEqual(link.kind, .symlink)
            XCTAssertEqual(link.linkTarget, "/usr/share/zoneinfo/UTC")
            XCTAssertEqual(entries.first { $0.path == "dev/console" }?.kind, .characterDevice)
            let big = try XCTUnwrap(entries.first { $0.path == "big" })
            XCTAssertEqual(big.data.count, 3_000_000)
            XCTAssertEqual(big.uid, 1000)
            XCTAssertTrue(big.data.allSatisfy { $0 == 7 })
        }
    }

    /// Initrds are segments back to back; the reader sees both, the later one last.
    func testConcatenatedSegments() throws {
        let a = dir + "/a.cpio.zst", b = dir + "/b.cpio.zst", both = dir + "/initrd"
        try write(a, filter: .zstd(level: 3))
        let w = try ArchiveWriter(path: b, format: .cpioNewc, filter: .zstd(level: 3))
        try w.addFile("/etc/nxc/role", bytes: Array("client\n".utf8))
        try w.finish()
        var data = try Data(contentsOf: URL(fileURLWithPath: a))
        data.append(try Data(contentsOf: URL(fileURLWithPath: b)))
        try data.write(to: URL(fileURLWithPath: both))
        let entries = try ArchiveReader.entries(path: both)
        XCTAssertEqual(entries.filter { $0.path == "etc/nxc/role" }.map { String(decoding: $0.data, as: UTF8.self) },
                       ["server\n", "client\n"])
    }

    /// Same entries, same bytes: no timestamps in the gzip header or the entries.
    func testReproducible() throws {
        for filter in [ArchiveFilter.gzip, .zstd(level: 3)] {
            try write(dir + "/1", filter: filter)
            try write(dir + "/2", filter: filter)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/1")),
                           try Data(contentsOf: URL(fileURLWithPath: dir + "/2")))
        }
    }

    func testTreeIsSortedAndKeepsTypes() throws {
        let tree = dir + "/tree"
        let fm = FileManager.default
        try fm.createDirectory(atPath: tree + "/b/c", withIntermediateDirectories: true)
        try Data("x".utf8).write(to: URL(fileURLWithPath: tree + "/b/c/f"))
        try Data("y".utf8).write(to: URL(fileURLWithPath: tree + "/a"))
        chmod(tree + "/a", 0o600)
        try fm.createSymbolicLink(atPath: tree + "/l", withDestinationPath: "b/c/f")
        try Data("skip".utf8).write(to: URL(fileURLWithPath: tree + "/skipme"))
        let out = dir + "/tree.cpio"
        let w = try ArchiveWriter(path: out, format: .cpioNewc, filter: .none)
        try w.addTree(tree) { $0 != "/skipme" }
        try w.finish()
        let entries = try ArchiveReader.entries(path: out)
        XCTAssertEqual(entries.map(\.path), ["a", "b", "b/c", "b/c/f", "l"])
        XCTAssertEqual(entries[0].mode, 0o600)
        XCTAssertEqual(entries[4].linkTarget, "b/c/f")
    }

    func testErrorNamesThePath() {
        XCTAssertThrowsError(try ArchiveWriter(path: "/nonexistent-dir/x.cpio", format: .cpioNewc, filter: .none)) { e in
            XCTAssertTrue("\(e)".contains("/nonexistent-dir/x.cpio"), "\(e)")
        }
    }

    /// Extended attributes (file capabilities live in security.capability) survive a pax tar with
    /// zstd, sorted by name; cpio and trees read without `xattrs:` carry none.
    func testExtendedAttributesInPax() throws {
        let tree = dir + "/tree"
        try FileManager.default.createDirectory(atPath: tree + "/bin", withIntermediateDirectories: true)
        let file = tree + "/bin/ping"
        try Data("binary".utf8).write(to: URL(fileURLWithPath: file))
        let a: [UInt8] = [1, 2, 3], b = Array("value".utf8)
        guard setxattr(file, "user.nxc.b", b, b.count, 0) == 0, setxattr(file, "user.nxc.a", a, a.count, 0) == 0 else {
            throw XCTSkip("this file system has no user extended attributes")
        }
        XCTAssertEqual(ArchiveWriter.extendedAttributes(file).map(\.name), ["user.nxc.a", "user.nxc.b"])
        let tar = dir + "/t.tar.zst"
        let w = try ArchiveWriter(path: tar, format: .pax, filter: .zstd(level: 3))
        try w.addTree(tree, xattrs: true)
        try w.finish()
        let e = try XCTUnwrap(try ArchiveReader.entries(path: tar).first { $0.path == "bin/ping" })
        XCTAssertEqual(e.xattrs["user.nxc.a"], a)
        XCTAssertEqual(e.xattrs["user.nxc.b"], b)
        XCTAssertEqual(e.data, Array("binary".utf8))
        let plain = dir + "/plain.tar"
        let w2 = try ArchiveWriter(path: plain, format: .pax, filter: .none)
        try w2.addTree(tree)
        try w2.finish()
        XCTAssertEqual(try ArchiveReader.entries(path: plain).first { $0.path == "bin/ping" }?.xattrs, [:])
    }
}
