import Foundation
import XCTest
import NXCArchive
import NXCBuild
@testable import NXCFlavours
import NXCStore
@testable import NXCDeploy
@testable import NXCDeployment

/// nfs-store's store folder (--store-dir): the nodes' URL from a mount table like a Grid'5000
/// frontend's, the URL's checks, and the squashfs image made for real with tar2sqfs.
final class StoreFolderTests: XCTestCase {
    /// A frontend's table: / on ext4, the home over NFSv4 (with the server's address), a folder
    /// with a space bound elsewhere, and a bind mount of a subfolder of the home.
    static let mountinfo = """
        22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
        61 22 0:52 / /home/jdoe rw,relatime shared:33 - nfs4 nfs.rennes.grid5000.fr:/export/home/jdoe rw,vers=4.2,rsize=1048576,hard,proto=tcp,timeo=600,addr=172.16.111.106,clientaddr=172.16.97.1
        62 22 0:53 / /srv/my\\040data rw,relatime shared:34 - nfs nas:/vol/data rw,vers=3,addr=10.0.0.5
        63 22 0:52 /proj /mnt/proj rw,relatime shared:35 - nfs4 nfs.rennes.grid5000.fr:/export/home/jdoe rw,addr=172.16.111.106
        """

    func url(_ path: String) -> Result<String, DeployError> {
        StoreFolder.nfsURL(of: path, mounts: StoreFolder.mounts(mountinfo: Self.mountinfo))
    }

    func testURLFromTheMountTable() throws {
        XCTAssertEqual(try url("/home/jdoe/exp/store").get(), "nfs://172.16.111.106/export/home/jdoe/exp/store")
        XCTAssertEqual(try url("/home/jdoe").get(), "nfs://172.16.111.106/export/home/jdoe")
        XCTAssertEqual(try url("/srv/my data/x").get(), "nfs://10.0.0.5/vol/data/x")
        XCTAssertEqual(try url("/mnt/proj/store").get(), "nfs://172.16.111.106/export/home/jdoe/proj/store", "a bind mount's own root")
        // A sibling whose name starts like the mount point is not under it.
        guard case .failure(let e) = url("/home/jdoe2/store") else { return XCTFail("/home/jdoe2 is on ext4") }
        XCTAssertTrue("\(e)".contains("/home/jdoe2/store is on / (ext4), not on an NFS mount"), "\(e)")
        XCTAssertTrue("\(e)".contains("--store-url nfs://SERVER/PATH"), "\(e)")
        XCTAssertEqual(StoreFolder.mounts(mountinfo: "garbage\n1 2 3\n").count, 0)
    }

    /// The URL goes on the kernel command line, and the initrd resolves no names.
    func testURLIsChecked() throws {
        XCTAssertEqual(try StoreFolder.checkedURL("nfs://10.1.2.3/export/home/x/", option: "--store-url"), "nfs://10.1.2.3/export/home/x")
        XCTAssertEqual(try StoreFolder.checkedURL("nfs://localhost/srv", option: "--store-url"), "nfs://127.0.0.1/srv", "a name, resolved here")
        for (bad, says) in [("http://10.1.2.3/x", "expected nfs://SERVER/PATH"), ("nfs://10.1.2.3", "expected nfs://SERVER/PATH"),
                            ("nfs:///x", "expected nfs://SERVER/PATH"), ("nfs://10.1.2.3/a b", "letters, digits"),
                            ("nfs://10.1.2.3/a/../etc", "no . or .. parts"), ("nfs://10.1.2.3/a\"x", "letters, digits"),
                            ("nfs://no-such-host.invalid/x", "nor a name that resolves to one here")] {
            XCTAssertThrowsError(try StoreFolder.checkedURL(bad, option: "--store-url"), bad) { e in
                XCTAssertTrue("\(e)".contains("--store-url") && "\(e)".contains(says), "\(bad): \(e)")
            }
        }
    }

    /// --store-url needs --store-dir; --store-dir goes without --store-host.
    func testOptionsGoTogether() throws {
        var o = StartOptions()
        o.storeURL = "nfs://10.0.0.1/x"
        XCTAssertThrowsError(try KexecStart.checkStore(o)) { XCTAssertTrue("\($0)".contains("give --store-dir DIR too"), "\($0)") }
        o.storeDir = "/tmp/x"
        XCTAssertNoThrow(try KexecStart.checkStore(o))
        o.storeHost = "root@store"
        XCTAssertThrowsError(try KexecStart.checkStore(o)) { XCTAssertTrue("\($0)".contains("goes without --store-host"), "\($0)") }
    }

    /// The image keeps the archive's owners and modes (written by a user who could not make them),
    /// is world-readable, the same bytes from the same archive, and made once: a whole one is kept,
    /// a damaged one made again. A folder others cannot pass is named.
    func testImageIsMadeOnceWithTheTreesOwners() throws {
        try XCTSkipUnless(Command.which("tar2sqfs") != nil && Command.which("rdsquashfs") != nil, "squashfs-tools-ng (make test installs it)")
        let work = try Hostile.scratch()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let build = work + "/build"
        try FileManager.default.createDirectory(atPath: build, withIntermediateDirectories: true)
        let w = try ArchiveWriter(path: build + "/" + NetrootKind.systemName, format: .pax, filter: .zstd(level: 3))
        try w.addDirectory("etc")
        try w.addFile("etc/shadow", bytes: Array("root:*:1::::::\n".utf8), mode: 0o640, uid: 0, gid: 42)
        try w.addDirectory("usr/bin")
        try w.addFile("usr/bin/su", bytes: Array("#!/bin/true\n".utf8), mode: 0o4755, uid: 0, gid: 0)
        try w.addDirectory("sbin")
        try w.addSymlink("sbin/init", target: "/lib/systemd/systemd")
        try w.finish()
        let tree = NetrootKind.Description(tree: String(repeating: "cd", count: 16), archive: NetrootKind.systemName,
                                           sha256: try sha256(file: build + "/" + NetrootKind.systemName), size: 1)
        let lines = LinesBox()
        let say: @Sendable (String) -> Void = { lines.append($0) }
        let folder = try StoreFolder.make(dir: work + "/home/exp/store", url: "nfs://10.0.0.9" + work + "/home/exp/store", tree: tree)
        XCTAssertEqual(folder.rootURL, "nfs://10.0.0.9\(work)/home/exp/store/\(tree.tree).sqfs")
        let sum = try folder.publish(build: build, progress: say)
        XCTAssertEqual(try sha256(file: folder.imagePath), sum)
        XCTAssertEqual(try String(contentsOfFile: folder.sumPath, encoding: .utf8), sum + "\n")
        var s = stat()
        XCTAssertEqual(stat(folder.imagePath, &s), 0)
        XCTAssertEqual(s.st_mode & 0o777, 0o644)
        let shadow = try Command.run(["rdsquashfs", "-s", "etc/shadow", folder.imagePath], timeout: 30)
        XCTAssertTrue(shadow.contains("Access: 0640") && shadow.contains("GID: 42"), shadow)
        XCTAssertTrue(try Command.run(["rdsquashfs", "-s", "usr/bin/su", folder.imagePath], timeout: 30).contains("Access: 04755"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.dir).sorted(), [folder.imageName, folder.imageName + ".sha256"],
                       "nothing else left in the folder")
        // Kept while whole; the same bytes in another folder; made again when damaged.
        XCTAssertEqual(try folder.publish(build: build, progress: say), sum)
        XCTAssertTrue(lines.all.contains { $0.contains("holds the system already") }, lines.all.joined(separator: "\n"))
        let other = try StoreFolder.make(dir: work + "/other", url: "nfs://10.0.0.9/other", tree: tree)
        XCTAssertEqual(try other.publish(build: build, progress: say), sum, "the same archive gives the same image")
        try Data("damaged".utf8).write(to: URL(fileURLWithPath: folder.imagePath))
        XCTAssertEqual(try folder.publish(build: build, progress: say), sum)
        XCTAssertEqual(try sha256(file: folder.imagePath), sum)
        // A parent others cannot pass through is named (root on a node is nobody to an NFS home).
        XCTAssertEqual(chmod(work + "/home", 0o700), 0)
        XCTAssertTrue(folder.unreachable().contains { $0.hasPrefix(work + "/home (700)") }, "\(folder.unreachable())")
        XCTAssertFalse(folder.unreachable().contains { $0.hasPrefix(work + "/home/exp") }, "\(folder.unreachable())")
    }

    /// A folder off any NFS mount without --store-url, or one others may write in, is refused before
    /// anything is written.
    func testFolderOffNFSIsRefused() throws {
        let work = try Hostile.scratch()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let tree = NetrootKind.Description(tree: String(repeating: "cd", count: 16), archive: NetrootKind.systemName, sha256: "", size: 1)
        XCTAssertThrowsError(try StoreFolder.make(dir: work + "/store", url: nil, tree: tree, mountinfo: Self.mountinfo)) { e in
            XCTAssertTrue("\(e)".contains("--store-dir") && "\(e)".contains("not on an NFS mount"), "\(e)")
        }
        try FileManager.default.createDirectory(atPath: work + "/open", withIntermediateDirectories: true)
        XCTAssertEqual(chmod(work + "/open", 0o1777), 0)
        XCTAssertThrowsError(try StoreFolder.make(dir: work + "/open", url: "nfs://10.0.0.9/open", tree: tree)) { e in
            XCTAssertTrue("\(e)".contains("others can write in it"), "\(e)")
        }
        XCTAssertThrowsError(try StoreFolder.make(dir: "relative/store", url: nil, tree: tree)) { e in
            XCTAssertTrue("\(e)".contains("is not an absolute path"), "\(e)")
        }
    }
}

/// Progress lines collected from a @Sendable closure.
final class LinesBox: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ s: String) { lock.lock(); lines.append(s); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return lines }
}
