import CArchive
import Foundation
import XCTest
@testable import NXCArchive

/// A tree a normal user unpacks (every file theirs, no device nodes, no security.* attributes) packs
/// into the same members as the tree root would have: owners, modes, devices and attributes come
/// from the ownership record.
final class TreeOwnershipTests: XCTestCase {
    var dir = ""

    override func setUp() {
        dir = NSTemporaryDirectory() + "nxc-ownership-test-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() {
        // Trees unpacked by the tests are the caller's to delete, folders without write bits included.
        try? FileManager.default.removeItem(atPath: dir)
    }

    struct Member {
        var name: String
        var type: UInt32
        var mode: UInt32
        var uid: Int64 = 0
        var gid: Int64 = 0
        var data: [UInt8] = []
        var link: String?
        var hardlink: String?
        var device: (UInt32, UInt32)?
        var xattrs: [(String, [UInt8])] = []
    }

    /// A pax tar written with libarchive directly (not ArchiveWriter, which is under test), shaped like
    /// mmdebstrap's: "./" names, devices first, a hard link, a file capability.
    static let image: [Member] = [
        Member(name: "./dev/", type: NXC_AE_IFDIR, mode: 0o755),
        Member(name: "./dev/null", type: NXC_AE_IFCHR, mode: 0o666, device: (1, 3)),
        Member(name: "./dev/fd", type: NXC_AE_IFLNK, mode: 0o777, link: "/proc/self/fd"),
        Member(name: "./", type: NXC_AE_IFDIR, mode: 0o755),
        Member(name: "./etc/", type: NXC_AE_IFDIR, mode: 0o755),
        Member(name: "./etc/shadow", type: NXC_AE_IFREG, mode: 0o640, gid: 42, data: Array("root:*:19000:0:99999:7:::\n".utf8)),
        Member(name: "./etc/ssh/", type: NXC_AE_IFDIR, mode: 0o755),
        Member(name: "./etc/ssh/ssh_host_ed25519_key", type: NXC_AE_IFREG, mode: 0o600, data: Array("secret".utf8)),
        Member(name: "./etc/ssh/ssh_host_ed25519_key.pub", type: NXC_AE_IFREG, mode: 0o644, data: Array("public".utf8)),
        Member(name: "./proc/", type: NXC_AE_IFDIR, mode: 0o555),
        Member(name: "./root/", type: NXC_AE_IFDIR, mode: 0o700),
        Member(name: "./run/", type: NXC_AE_IFDIR, mode: 0o755),
        Member(name: "./run/initctl", type: NXC_AE_IFIFO, mode: 0o600),
        Member(name: "./tmp/", type: NXC_AE_IFDIR, mode: 0o1777),
        Member(name: "./usr/", type: NXC_AE_IFDIR, mode: 0o755),
        Member(name: "./usr/bin/", type: NXC_AE_IFDIR, mode: 0o755),
        Member(name: "./usr/bin/perl", type: NXC_AE_IFREG, mode: 0o755, data: Array("#!perl".utf8)),
        Member(name: "./usr/bin/perl5.36.0", type: NXC_AE_IFREG, mode: 0o755, hardlink: "./usr/bin/perl"),
        Member(name: "./usr/bin/ping", type: NXC_AE_IFREG, mode: 0o755, data: [0x7f, 0x45],
               xattrs: [("security.capability", [1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])]),
        Member(name: "./usr/bin/su", type: NXC_AE_IFREG, mode: 0o4755, data: [1]),
        Member(name: "./usr/share/", type: NXC_AE_IFDIR, mode: 0o755),
        Member(name: "./usr/share/empty/", type: NXC_AE_IFDIR, mode: 0o000),
        Member(name: "./var/", type: NXC_AE_IFDIR, mode: 0o755),
        Member(name: "./var/lib/", type: NXC_AE_IFDIR, mode: 0o755),
        Member(name: "./var/lib/munge/", type: NXC_AE_IFDIR, mode: 0o700, uid: 100, gid: 101),
        Member(name: "./var/lib/munge/seed", type: NXC_AE_IFREG, mode: 0o000, uid: 100, gid: 101, data: [9]),
    ]

    static func writeTar(_ members: [Member], to path: String) throws {
        guard let a = archive_write_new() else { throw XCTSkip("libarchive: out of memory") }
        defer { archive_write_free(a) }
        XCTAssertEqual(archive_write_set_format_pax_restricted(a), ARCHIVE_OK)
        XCTAssertEqual(archive_write_open_filename(a, path), ARCHIVE_OK)
        for m in members {
            guard let e = archive_entry_new() else { continue }
            defer { archive_entry_free(e) }
            archive_entry_set_pathname(e, m.name)
            archive_entry_set_filetype(e, m.type)
            archive_entry_set_perm(e, mode_t(m.mode))
            archive_entry_set_uid(e, m.uid)
            archive_entry_set_gid(e, m.gid)
            archive_entry_set_size(e, Int64(m.data.count))
            if let l = m.link { archive_entry_set_symlink(e, l) }
            if let h = m.hardlink { archive_entry_set_hardlink(e, h); archive_entry_set_size(e, 0) }
            if let (major, minor) = m.device {
                archive_entry_set_rdevmajor(e, dev_t(major))
                archive_entry_set_rdevminor(e, dev_t(minor))
            }
            for (name, value) in m.xattrs {
                value.withUnsafeBytes { _ = archive_entry_xattr_add_entry(e, name, $0.baseAddress, $0.count) }
            }
            XCTAssertEqual(archive_write_header(a, e), ARCHIVE_OK, m.name)
            if !m.data.isEmpty && m.hardlink == nil {
                m.data.withUnsafeBytes { _ = archive_write_data(a, $0.baseAddress, $0.count) }
            }
        }
        XCTAssertEqual(archive_write_close(a), ARCHIVE_OK)
    }

    func unpackImage() throws -> (root: String, record: TreeOwnership) {
        let tar = dir + "/image.tar", root = dir + "/root"
        try Self.writeTar(Self.image, to: tar)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false)
        return (root, try TreeOwnership.unpack(archive: tar, into: root))
    }

    func testUnpackedTreeIsTheCallersAndTheRecordHasTheRest() throws {
        let (root, record) = try unpackImage()
        var st = stat()
        for m in Self.image where m.name != "./" {
            let p = root + "/" + m.name.dropFirst(2)
            XCTAssertEqual(lstat(p, &st), 0, p)
            XCTAssertEqual(st.st_uid, getuid(), p)
            if m.type == NXC_AE_IFDIR { XCTAssertEqual(st.st_mode & 0o700, 0o700, "\(p): the owner may list and change it") }
            if m.type == NXC_AE_IFREG { XCTAssertEqual(st.st_mode & 0o600, 0o600, "\(p): the owner may read it") }
            XCTAssertEqual(st.st_mode & 0o7000, 0, "\(p): no set-id or sticky bit on disk")
            let key = "/" + m.name.dropFirst(2).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            let e = try XCTUnwrap(record.entries[key], key)
            XCTAssertEqual(e.uid, m.uid, key)
            XCTAssertEqual(e.gid, m.gid, key)
            XCTAssertEqual(e.mode, m.mode, key)
        }
        XCTAssertEqual(lstat(root + "/dev/null", &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFREG, "a placeholder, not a device node")
        XCTAssertEqual(st.st_size, 0)
        XCTAssertEqual(record.entries["/dev/null"]?.special, .characterDevice(major: 1, minor: 3))
        XCTAssertEqual(record.entries["/run/initctl"]?.special, .fifo)
        XCTAssertEqual(record.entries["/usr/bin/ping"]?.xattrs.map(\.name), ["security.capability"])
        XCTAssertEqual(record.entries["/"]?.mode, 0o755)
        var a = stat(), b = stat()
        XCTAssertEqual(lstat(root + "/usr/bin/perl", &a), 0)
        XCTAssertEqual(lstat(root + "/usr/bin/perl5.36.0", &b), 0)
        XCTAssertEqual(a.st_ino, b.st_ino, "hard links stay links")
        XCTAssertEqual(FileManager.default.contents(atPath: root + "/etc/shadow"), Data(Self.image.first { $0.name == "./etc/shadow" }?.data ?? []))
        // The tree is the caller's to change and remove (the build's scrub, the store's collector).
        try FileManager.default.removeItem(atPath: root + "/etc/ssh/ssh_host_ed25519_key.pub")
        try FileManager.default.removeItem(atPath: root)
    }

    /// The archive of the unpacked tree with its record has the members, owners, modes, devices and
    /// attributes of the original image; what was added after unpacking belongs to root.
    func testPackingWithTheRecordGivesTheOriginalOwnersAndModes() throws {
        let (root, record) = try unpackImage()
        // A file made after unpacking, as the build's scrub does, owned on disk by whoever ran it.
        FileManager.default.createFile(atPath: root + "/etc/machine-id", contents: Data())
        chown(root + "/etc/machine-id", 1234, 1234)
        let out = dir + "/out.tar"
        let w = try ArchiveWriter(path: out, format: .pax, filter: .none)
        try w.addTree(root, xattrs: true, ownership: record)
        try w.finish()
        // pax names folders "dev/".
        let got = Dictionary(uniqueKeysWithValues: try ArchiveReader.entries(path: out).map {
            ($0.path.trimmingCharacters(in: CharacterSet(charactersIn: "/")), $0)
        })
        for m in Self.image where m.name != "./" {
            let key = m.name.dropFirst(2).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            let e = try XCTUnwrap(got[key], key)
            XCTAssertEqual(e.uid, m.uid, key)
            XCTAssertEqual(e.gid, m.gid, key)
            if m.type != NXC_AE_IFLNK { XCTAssertEqual(e.mode, m.mode, key) }
            let kind: ArchiveEntry.Kind = [NXC_AE_IFDIR: .directory, NXC_AE_IFLNK: .symlink, NXC_AE_IFCHR: .characterDevice,
                                           NXC_AE_IFIFO: .fifo][m.type] ?? .file
            XCTAssertEqual(e.kind, kind, key)
            if m.hardlink == nil, m.type == NXC_AE_IFREG { XCTAssertEqual(e.data, m.data, key) }
            XCTAssertEqual(e.xattrs, Dictionary(uniqueKeysWithValues: m.xattrs), key)
        }
        XCTAssertEqual(got["usr/bin/perl5.36.0"]?.data, Array("#!perl".utf8), "hard links are copies")
        let added = try XCTUnwrap(got["etc/machine-id"])
        XCTAssertEqual([added.uid, added.gid], [0, 0])
        XCTAssertEqual(Set(got.keys), Set(Self.image.filter { $0.name != "./" }.map {
            $0.name.dropFirst(2).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        } + ["etc/machine-id"]))
    }

    /// Without a record, lstat's owners are written, as before (root builds).
    func testWithoutRecordOwnersComeFromTheFiles() throws {
        let root = dir + "/plain"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false)
        FileManager.default.createFile(atPath: root + "/f", contents: Data([1]))
        chown(root + "/f", 1234, 4321)
        chmod(root + "/f", 0o640)
        let out = dir + "/plain.cpio"
        let w = try ArchiveWriter(path: out, format: .cpioNewc, filter: .none)
        try w.addTree(root)
        try w.finish()
        let f = try XCTUnwrap(try ArchiveReader.entries(path: out).first { $0.path == "f" })
        XCTAssertEqual([f.uid, f.gid], [1234, 4321])
        XCTAssertEqual(f.mode, 0o640)
    }

    func testMembersLeavingTheFolderAreRefused() throws {
        for (i, bad) in [Member(name: "../escaped", type: NXC_AE_IFREG, mode: 0o644, data: [1]),
                         Member(name: "/abs", type: NXC_AE_IFREG, mode: 0o644, data: [1]),
                         Member(name: "./link", type: NXC_AE_IFREG, mode: 0o644, hardlink: "../../etc/passwd")].enumerated() {
            let tar = dir + "/bad\(i).tar", root = dir + "/bad\(i)"
            try Self.writeTar([Member(name: "./", type: NXC_AE_IFDIR, mode: 0o755), bad], to: tar)
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false)
            XCTAssertThrowsError(try TreeOwnership.unpack(archive: tar, into: root), bad.name) { error in
                XCTAssertTrue("\(error)".contains("outside"), "\(error)")
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/escaped"))
        }
    }

    /// Nothing is written through a symbolic link of the archive itself.
    func testNoWriteThroughASymlink() throws {
        let outside = dir + "/outside"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: false)
        let tar = dir + "/sym.tar", root = dir + "/sym"
        try Self.writeTar([Member(name: "./", type: NXC_AE_IFDIR, mode: 0o755),
                           Member(name: "./etc", type: NXC_AE_IFLNK, mode: 0o777, link: outside),
                           Member(name: "./etc/passwd", type: NXC_AE_IFREG, mode: 0o644, data: [1])], to: tar)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false)
        XCTAssertThrowsError(try TreeOwnership.unpack(archive: tar, into: root))
        XCTAssertFalse(FileManager.default.fileExists(atPath: outside + "/passwd"))
    }

    func testRecordRoundTrip() throws {
        let record = TreeOwnership(entries: [
            "/": .init(uid: 0, gid: 0, mode: 0o755),
            "/dev/null": .init(uid: 0, gid: 0, mode: 0o666, special: .characterDevice(major: 1, minor: 3)),
            "/dev/sda": .init(uid: 0, gid: 6, mode: 0o660, special: .blockDevice(major: 8, minor: 0)),
            "/run/initctl": .init(uid: 0, gid: 0, mode: 0o600, special: .fifo),
            "/usr/bin/ping": .init(uid: 0, gid: 0, mode: 0o755, xattrs: [.init(name: "security.capability", value: [1, 0, 0xff]),
                                                                         .init(name: "user.a b%", value: [])]),
            "/usr/share/a name with spaces/100%/é\n": .init(uid: 100, gid: 101, mode: 0o4750),
        ])
        let bytes = record.encoded()
        XCTAssertEqual(try TreeOwnership(decoding: bytes, origin: "x"), record)
        XCTAssertEqual(String(decoding: bytes, as: UTF8.self).split(separator: "\n").count, 7, "one line per path: names are escaped")
        let path = dir + "/ownership"
        try record.write(to: path)
        XCTAssertEqual(try TreeOwnership.load(path: path), record)
    }

    func testMalformedRecordNamesFileAndLine() {
        for (text, line) in [("nope\n", 1), ("nxc-ownership 1\n/ 755 0 0\n/x 999 0 0\n", 3), ("nxc-ownership 1\n/x 644 0 0 q\n", 2),
                             ("nxc-ownership 1\nrelative 644 0 0\n", 2), ("nxc-ownership 1\n/x 644 -1 0\n", 2),
                             ("nxc-ownership 1\n/x 644 0 0 c1\n", 2), ("nxc-ownership 1\n/x 644 0 0 xa=1\n", 2)] {
            XCTAssertThrowsError(try TreeOwnership(decoding: Array(text.utf8), origin: "/store/e/ownership"), text) { error in
                XCTAssertTrue("\(error)".contains("/store/e/ownership"), "\(error)")
                XCTAssertTrue("\(error)".contains("line \(line)"), "\(error)")
            }
        }
        XCTAssertThrowsError(try TreeOwnership.load(path: dir + "/missing")) { XCTAssertTrue("\($0)".contains(dir + "/missing")) }
    }
}
