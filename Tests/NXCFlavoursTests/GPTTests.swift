import Foundation
import XCTest
import NXCBuild
@testable import NXCFlavours

/// The GPT nxc writes into disk images: CRC-32 and GUID byte order by the specification's own
/// examples, layouts it refuses, and a table util-linux's sfdisk reads back and verifies.
final class GPTTests: XCTestCase {
    func testCRC32AndGUIDByteOrder() {
        XCTAssertEqual(CRC32.checksum(Array("123456789".utf8)), 0xCBF4_3926)
        XCTAssertEqual(CRC32.checksum([]), 0)
        let esp = GPT.efiSystem
        XCTAssertEqual(esp.bytes, [0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B])
        XCTAssertEqual(esp.description, "c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
        // The BIOS boot partition's type spells "Hah!IdontNeedEFI" on disk.
        XCTAssertEqual(GPT.biosBoot.bytes, Array("Hah!IdontNeedEFI".utf8))
        for bad in ["", "c12a7328-f81f-11d2-ba4b-00a0c93ec93", "c12a7328f81f11d2ba4b00a0c93ec93b", "g12a7328-f81f-11d2-ba4b-00a0c93ec93b"] {
            XCTAssertNil(GUID(bad), bad)
        }
        let d = GUID.derived(from: Array(repeating: 0xff, count: 32))
        XCTAssertEqual(d.description, "ffffffff-ffff-4fff-bfff-ffffffffffff", "version 4, RFC 4122 variant")
    }

    func testBadLayoutsAreNamed() {
        let g = GUID.derived(from: Array(repeating: 1, count: 16))
        var t = GPT(disk: g, sectors: 8192, partitions: [
            .init(name: "a", type: GPT.biosBoot, guid: g, first: 2048, last: 4095),
            .init(name: "b", type: GPT.rootX86_64, guid: g, first: 4000, last: 8190),
        ])
        let p = t.problems()
        XCTAssertTrue(p.contains("a and b overlap"), "\(p)")
        XCTAssertTrue(p.contains { $0.hasPrefix("b: sectors 4000-8190 are outside 34-8158") }, "\(p)")
        t.partitions = [.init(name: "c", type: GPT.biosBoot, guid: g, first: 10, last: 5)]
        XCTAssertTrue(t.problems().contains { $0.contains("ends (5) before it starts (10)") })
    }

    /// A 64 MiB file with a BIOS boot, an EFI system and a root partition: sfdisk verifies it
    /// (both headers, CRCs) and reads back every GUID, type, bound and name; the same layout
    /// written twice gives the same bytes.
    func testSfdiskReadsTheTableBack() throws {
        try XCTSkipUnless(Command.which("sfdisk") != nil, "sfdisk (fdisk; make test installs it)")
        let dir = NSTemporaryDirectory() + "nxc-gpt-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sectors: UInt64 = 64 << 11
        func guid(_ s: String) -> GUID { GUID.derived(from: Array(s.utf8) + Array(repeating: 0, count: 16)) }
        let table = GPT(disk: guid("disk"), sectors: sectors, partitions: [
            .init(name: "bios", type: GPT.biosBoot, guid: guid("bios"), first: 2048, last: 4095),
            .init(name: "esp", type: GPT.efiSystem, guid: guid("esp"), first: 4096, last: 36863),
            .init(name: "root", type: GPT.rootX86_64, guid: guid("root"), first: 36864, last: sectors - 34, attributes: 1 << 59),
        ])
        var sums: [String] = []
        for n in 0..<2 {
            let path = dir + "/disk\(n).raw"
            let fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o644)
            XCTAssertGreaterThanOrEqual(fd, 0)
            XCTAssertEqual(ftruncate(fd, off_t(sectors) * 512), 0)
            try table.write(to: fd, bootCode: Array(repeating: 0x90, count: 440))
            close(fd)
            sums.append(try Command.run(["sha256sum", path], timeout: 30).prefix(64).description)
        }
        XCTAssertEqual(sums[0], sums[1])
        let path = dir + "/disk0.raw"
        let (st, verify) = try Command.status(["sfdisk", "--verify", path], timeout: 30)
        XCTAssertEqual(st, 0, verify)
        XCTAssertFalse(verify.lowercased().contains("corrupt") || verify.lowercased().contains("invalid"), verify)
        let json = try Command.run(["sfdisk", "--json", path], timeout: 30)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let pt = try XCTUnwrap(obj["partitiontable"] as? [String: Any])
        XCTAssertEqual(pt["label"] as? String, "gpt")
        XCTAssertEqual((pt["id"] as? String)?.lowercased(), table.disk.description)
        XCTAssertEqual(pt["firstlba"] as? Int, 34)
        XCTAssertEqual(pt["lastlba"] as? Int, Int(sectors) - 34)
        let parts = try XCTUnwrap(pt["partitions"] as? [[String: Any]])
        XCTAssertEqual(parts.count, 3)
        for (got, want) in zip(parts, table.partitions) {
            XCTAssertEqual(got["start"] as? Int, Int(want.first))
            XCTAssertEqual(got["size"] as? Int, Int(want.last - want.first + 1))
            XCTAssertEqual((got["type"] as? String)?.lowercased(), want.type.description)
            XCTAssertEqual((got["uuid"] as? String)?.lowercased(), want.guid.description)
            XCTAssertEqual(got["name"] as? String, want.name)
        }
        XCTAssertEqual(parts[2]["attrs"] as? String, "GUID:59")
        // The protective MBR keeps the boot code and its signature.
        let mbr = try XCTUnwrap(FileHandle(forReadingAtPath: path)?.readData(ofLength: 512))
        XCTAssertEqual(Array(mbr.prefix(4)), [0x90, 0x90, 0x90, 0x90])
        XCTAssertEqual([mbr[450], mbr[510], mbr[511]], [0xEE, 0x55, 0xAA])
    }
}
