import Foundation
import XCTest
import NXCTestbed
import NXCDeployment
@testable import NXCDeploy
@testable import NXCFlavours

/// nfs-store over kexec: once the check has said which NIC drivers the hosts use, the initrd sent
/// is the core, those drivers' segments (sorted, each once) and the payload; a host whose NICs use
/// none of the flavour's drivers gets the full initrd, as do starts where a failed host says nothing.
final class NarrowedInitrdTests: XCTestCase {
    var build = ""

    override func setUpWithError() throws {
        build = NSTemporaryDirectory() + "nxc-narrow-\(getpid())-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: build, withIntermediateDirectories: true)
        let files = ["initrd.base": "CORE" + "PAYLOAD", "initrd.payload": "PAYLOAD", "kernel": "K", "kexec.sh": "#!/bin/sh\n",
                     "initrd": "CORE" + "ALL" + "PAYLOAD", NetrootKind.nicFile("virtio_net"): "VIRTIO", NetrootKind.nicFile("e1000"): "E1000",
                     NetrootKind.nicFile("all"): "ALL"]
        for (f, text) in files { try Data(text.utf8).write(to: URL(fileURLWithPath: build + "/" + f)) }
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: build) }

    func run(_ nic: String?, failed: Bool = false) -> TestbedRun {
        var r = TestbedRun(entry: .init(node: "n", role: "r", host: TestbedHost(name: "h")))
        if let nic { r.facts["nic"] = nic }
        if failed { r.error = "unreachable" }
        return r
    }

    func initrd(_ runs: [TestbedRun]) throws -> (String, [String])? {
        guard let (dir, drivers) = try KexecStart.narrowedBundle(build: build, runs: runs, into: build + "/out") else { return nil }
        for f in ["kernel", "kexec.sh", "initrd.payload"] {
            XCTAssertEqual(FileManager.default.contents(atPath: dir + "/" + f), FileManager.default.contents(atPath: build + "/" + f), f)
        }
        return (try String(contentsOfFile: dir + "/initrd", encoding: .utf8), drivers)
    }

    func testOnlyTheHostsDrivers() throws {
        let one = try XCTUnwrap(try initrd([run("virtio_net"), run("virtio_net"), run(nil, failed: true)]))
        XCTAssertEqual(one.0, "CORE" + "VIRTIO" + "PAYLOAD")
        XCTAssertEqual(one.1, ["virtio_net"])
        // A driver the flavour lacks beside one it has (a second NIC): the one it has.
        let two = try XCTUnwrap(try initrd([run("virtio_net r8169"), run("e1000")]))
        XCTAssertEqual(two.0, "CORE" + "E1000" + "VIRTIO" + "PAYLOAD")
        XCTAssertEqual(two.1, ["e1000", "virtio_net"])
        let bundle = try KexecStart.localBundle(folder: build + "/out", run: build)
        XCTAssertEqual(bundle.prefix?.size, "CORE".count + "E1000".count + "VIRTIO".count, "the system segment: all but the payload")
    }

    func testEveryDriverWhenAHostHasNoneOfThem() throws {
        XCTAssertNil(try initrd([run("virtio_net"), run("r8169")]))
        XCTAssertNil(try initrd([run("virtio_net"), run(nil)]), "a host that named no driver")
        XCTAssertNil(try initrd([run("all")]), "not a driver's name")
        XCTAssertNil(try initrd([run(nil, failed: true)]))
        try FileManager.default.removeItem(atPath: build + "/initrd.base")
        XCTAssertNil(try initrd([run("virtio_net")]), "a build without NIC segments (g5k-ramdisk)")
    }
}
