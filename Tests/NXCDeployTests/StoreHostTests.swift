import Foundation
import XCTest
import NXCArchive
import NXCBuild
@testable import NXCFlavours
import NXCStore
@testable import NXCDeploy
@testable import NXCDeployment

/// nfs-store's store host: which of its addresses the nodes mount from, the tree's description as
/// a start reads it, and the script that receives the tree, run here for real.
final class StoreHostTests: XCTestCase {
    static func ipJSON(_ addrs: [(String, Int)]) -> String {
        "[" + addrs.enumerated().map { i, a in
            #"{"ifname":"eth\#(i)","link_type":"ether","address":"52:54:00:00:00:0\#(i)","addr_info":[{"family":"inet","local":"\#(a.0)","prefixlen":\#(a.1),"scope":"global"}]}"#
        }.joined(separator: ",") + "]"
    }

    func node(_ addrs: [String]) -> Deployment.Node {
        Deployment.Node(role: "r", address: nil, interfaces: [.init(mac: "52:54:00:aa:00:01", addresses: addrs, routes: nil)], ssh: nil)
    }

    /// QEMU's user network gives every VM 10.0.2.15: an address the nodes also have is never the
    /// store's; the one in the nodes' own subnet is, and that subnet is what it exports to.
    func testAddressIsTheStoresOwnInTheNodesSubnet() throws {
        let facts = ["addr": Self.ipJSON([("10.0.2.15", 24), ("192.168.50.9", 24), ("172.16.0.1", 16)])]
        let nodes = [node(["10.0.2.15/24", "192.168.50.3/24"]), node(["10.0.2.15/24", "192.168.50.4/24"])]
        let picked = try XCTUnwrap(StoreHost.address(storeFacts: facts, nodes: nodes))
        XCTAssertEqual(picked.address, "192.168.50.9")
        XCTAssertEqual(picked.subnets, ["192.168.50.0/24"])
        // No address of the store in a node's subnet (or only ones the nodes share): none.
        XCTAssertNil(StoreHost.address(storeFacts: ["addr": Self.ipJSON([("10.0.2.15", 24)])], nodes: nodes))
        XCTAssertNil(StoreHost.address(storeFacts: ["addr": "not json"], nodes: nodes))
    }

    func testIPv4Parsing() {
        XCTAssertEqual(IPv4Net(cidr: "10.1.2.3/20")?.cidrNetwork, "10.1.0.0/20")
        XCTAssertEqual(IPv4Net(cidr: "0.0.0.0/0")?.cidrNetwork, "0.0.0.0/0")
        for bad in ["10.1.2/24", "10.1.2.256/24", "10.1.2.3", "10.1.2.3/33", "fe80::1/64", "1.2.3.4/x", "1..2.3/8"] {
            XCTAssertNil(IPv4Net(cidr: bad), bad)
        }
    }

    /// The description comes from the build folder, which a user may have edited: its tree name
    /// ends up in a path on the store host, so anything but 32 hex digits is refused.
    func testDescriptionIsChecked() throws {
        let dir = try Hostile.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertNil(try StoreHost.description(build: dir), "no netroot.json: not a netroot build")
        let path = dir + "/" + NetrootKind.describeName
        let good = #"{"archive":"system.tar.zst","sha256":"\#(String(repeating: "a", count: 64))","size":10,"tree":"\#(String(repeating: "0", count: 32))"}"#
        try Data(good.utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(try StoreHost.description(build: dir)?.tree, String(repeating: "0", count: 32))
        for bad in [good.replacingOccurrences(of: String(repeating: "0", count: 32), with: "../../etc/" + String(repeating: "0", count: 22)),
                    good.replacingOccurrences(of: "system.tar.zst", with: "other.tar"), "{", "[]"] {
            try Data(bad.utf8).write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try StoreHost.description(build: dir), bad) { e in
                XCTAssertTrue("\(e)".contains(path) && "\(e)".contains("not a tree description"), "\(e)")
            }
        }
    }

    /// The receiving script: a tree whose SHA-256 is not the one announced leaves nothing behind; the
    /// right one is unpacked with owners and modes, readable at its root, with its marker.
    func testReceiveChecksAndUnpacks() throws {
        let work = try Hostile.scratch()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let archive = work + "/system.tar.zst"
        let w = try ArchiveWriter(path: archive, format: .pax, filter: .zstd(level: 3))
        try w.addDirectory("etc")
        try w.addFile("etc/shadow", bytes: Array("root:*:1::::::\n".utf8), mode: 0o640, uid: 0, gid: 42)
        try w.addDirectory("sbin")
        try w.addSymlink("sbin/init", target: "/lib/systemd/systemd")
        try w.finish()
        let sha = try sha256(file: archive)
        let base = work + "/srv/nxc/store"
        try FileManager.default.createDirectory(atPath: work + "/srv", withIntermediateDirectories: true)
        let name = String(repeating: "ab", count: 16)
        let wrong = String(repeating: "0", count: 64)
        let (bad, badOut) = try Command.status(["sh", "-c", StoreHost.receiveScript, "sh", base, name, wrong], timeout: 60, inputFile: archive)
        XCTAssertNotEqual(bad, 0, badOut)
        XCTAssertTrue(badOut.contains("arrived with SHA-256 \(sha), not \(wrong)"), badOut)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: base), [], "nothing left of a tree that did not match")
        let (st, out) = try Command.status(["sh", "-c", StoreHost.receiveScript, "sh", base, name, sha], timeout: 60, inputFile: archive)
        XCTAssertEqual(st, 0, out)
        XCTAssertTrue(out.contains("@tree \(sha)"), out)
        XCTAssertEqual(try String(contentsOfFile: base + "/\(name).tree", encoding: .utf8), sha + "\n")
        var s = stat()
        XCTAssertEqual(lstat(base + "/" + name, &s), 0)
        XCTAssertEqual(s.st_mode & 0o777, 0o755, "the tree's root is the nodes' /")
        XCTAssertEqual(lstat(base + "/\(name)/etc/shadow", &s), 0)
        XCTAssertEqual([s.st_mode & 0o777, s.st_gid], [0o640, 42])
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: base + "/\(name)/sbin/init"), "/lib/systemd/systemd")
        for d in [work + "/srv/nxc", base] {
            XCTAssertEqual(lstat(d, &s), 0)
            XCTAssertEqual(s.st_mode & 0o777, 0o700, "\(d): nxc's own")
        }
    }

    /// The state script makes one folder per node keeping state and exports the composition's folder
    /// read-write to each subnet (an exportfs on PATH that records what it was asked and lists it).
    func testStateFoldersAreMadeAndExportedReadWrite() throws {
        let work = try Hostile.scratch()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let bin = work + "/bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        // The script writes /etc/exports.d: run it with / as a scratch folder through a wrapper that rewrites it.
        let script = StoreHost.stateScript.replacingOccurrences(of: "/etc/exports.d", with: work + "/exports.d")
        try Data("#!/bin/sh\n[ \"$1\" = -ra ] && exit 0\ncut -d' ' -f1 \(work)/exports.d/*\n".utf8).write(to: URL(fileURLWithPath: bin + "/exportfs"))
        chmod(bin + "/exportfs", 0o755)
        let base = work + "/srv/nxc/state"
        let (st, out) = try Command.status(["env", "PATH=\(bin):/usr/bin:/bin", "sh", "-c", script, "sh", base, "webserver", "f-s-i-d",
                                            "server", "client1", "--", "10.93.0.0/24", "10.94.0.0/16"], timeout: 30)
        XCTAssertEqual(st, 0, out)
        XCTAssertTrue(out.contains("@state \(base)/webserver"), out)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: base + "/webserver").sorted(), ["client1", "server"])
        let exports = try String(contentsOfFile: work + "/exports.d/nxc-state-webserver.exports", encoding: .utf8)
        XCTAssertEqual(exports, "\(base)/webserver 10.93.0.0/24(rw,no_root_squash,no_subtree_check,insecure,fsid=f-s-i-d)\n"
                       + "\(base)/webserver 10.94.0.0/16(rw,no_root_squash,no_subtree_check,insecure,fsid=f-s-i-d)\n")
        XCTAssertEqual(StoreHost.stateWords(base: "nfs://10.93.0.14/srv/nxc/state/webserver", node: "server", paths: ["/var/log/nginx", "/srv/x"]),
                       ["nxc.state=nfs://10.93.0.14/srv/nxc/state/webserver/server", "nxc.state_paths=/var/log/nginx,/srv/x"])
        XCTAssertEqual(StoreHost.stateWords(base: "nfs://a/b", node: "client1", paths: []), [])
        XCTAssertEqual(StoreHost.stateWords(base: nil, node: "server", paths: ["/var/log/nginx"]), [])
        XCTAssertTrue(NetrootInit.script.contains("nxc.state_paths=*) keep="), "the initrd reads the words")
    }

    /// The firmware a module declares: the `firmware=` strings of its .modinfo, and nothing that
    /// merely contains the word.
    func testDeclaredFirmwareIsReadFromModinfo() throws {
        let work = try Hostile.scratch()
        defer { try? FileManager.default.removeItem(atPath: work) }
        var bytes = Array("\u{7f}ELF...text firmware=not/this.bin\0".utf8)
        bytes += Array("license=GPL\0firmware=bnx2x/bnx2x-e2-7.13.21.0.fw\0firmware=tigon/tg3.bin\0firmware=\0author=x\0".utf8)
        try Data(bytes).write(to: URL(fileURLWithPath: work + "/m.ko"))
        XCTAssertEqual(NetrootKind.declaredFirmware(work + "/m.ko"), ["bnx2x/bnx2x-e2-7.13.21.0.fw", "tigon/tg3.bin"])
        XCTAssertEqual(NetrootKind.declaredFirmware(work + "/none.ko"), [])
    }

    /// The fsid of a tree is a UUID made of its name.
    func testFsidIsAUUIDOfTheTree() {
        let tree = NetrootKind.Description(tree: "0123456789abcdef0123456789abcdef", archive: NetrootKind.systemName, sha256: "", size: 0)
        XCTAssertEqual(StoreHost(host: TestbedHost(name: "h"), tree: tree).fsid, "01234567-89ab-cdef-0123-456789abcdef")
    }

    /// The init script is valid shell, and reads only nxc's words of the command line.
    func testInitScriptParses() throws {
        let (st, out) = try Command.status(["sh", "-n", "-c", NetrootInit.script], timeout: 10)
        XCTAssertEqual(st, 0, out)
        XCTAssertTrue(NetrootInit.script.hasPrefix("#!/bin/busybox sh\n"))
    }

    /// The initrd's `prefixed`, run by sh: iPXE's dotted netmask becomes a prefix length.
    func testInitScriptTakesDottedNetmasks() throws {
        let lines = NetrootInit.script.split(separator: "\n", omittingEmptySubsequences: false)
        let from = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("prefixed() {") })
        let to = try XCTUnwrap(lines[from...].firstIndex { $0 == "}" })
        let function = lines[from...to].joined(separator: "\n")
        for (given, expected) in [("10.93.0.13/255.255.255.0", "10.93.0.13/24"), ("10.1.2.3/255.255.240.0", "10.1.2.3/20"),
                                  ("10.1.2.3/255.255.255.255", "10.1.2.3/32"), ("10.1.2.3/16", "10.1.2.3/16")] {
            let (st, out) = try Command.status(["sh", "-c", function + "\nprefixed \"$1\"", "sh", given], timeout: 10)
            XCTAssertEqual(st, 0, out)
            XCTAssertEqual(out.trimmingCharacters(in: .whitespacesAndNewlines), expected, given)
        }
    }

    /// pxe's machines are known by their addresses only: the store's own address in their subnet.
    func testAddressTowardMachinesKnownByAddress() throws {
        let facts = ["addr": Self.ipJSON([("10.0.2.15", 24), ("10.93.0.14", 24)])]
        let picked = try XCTUnwrap(StoreHost.address(storeFacts: facts, nodeAddresses: ["10.93.0.11", "10.93.0.12"]))
        XCTAssertEqual(picked.address, "10.93.0.14")
        XCTAssertEqual(picked.subnets, ["10.93.0.0/24"])
        XCTAssertNil(StoreHost.address(storeFacts: facts, nodeAddresses: ["10.94.0.11"]))
        XCTAssertNil(StoreHost.address(storeFacts: ["addr": Self.ipJSON([("10.93.0.11", 24)])], nodeAddresses: ["10.93.0.11"]))
    }
}
