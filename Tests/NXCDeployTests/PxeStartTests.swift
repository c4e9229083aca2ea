import Foundation
import XCTest
@testable import NXCDeploy
@testable import NXCDeployment
@testable import NXCFlavours

/// The pxe method's texts and checks: what iPXE and pixiecore are given, and the options it refuses.
final class PxeStartTests: XCTestCase {
    func flavour() throws -> Flavour { try Flavour.named("pxe", project: DeployTests.repo) }

    func testCommandLineCarriesIdentityDocumentAndTheNetworkIPXEFillsIn() throws {
        let f = try flavour()
        XCTAssertEqual(f.artefact, "ramdisk")
        XCTAssertEqual(f.start, "pxe")
        let sha = String(repeating: "0f", count: 32)
        let line = PxeBoot.commandLine(flavour: f, node: "client1", documentURL: "http://10.9.0.1:8770/TOKEN/deployment.json", sha256: sha)
        let words = line.split(separator: " ").map(String.init)
        XCTAssertEqual(Array(words.prefix(f.kernelParams.count)), f.kernelParams)
        for w in ["initrd=initrd", "nxc.host=client1", "nxc.deployment_url=http://10.9.0.1:8770/TOKEN/deployment.json?node=client1",
                  "nxc.deployment_sha256=\(sha)", "nxc.if=${netX/mac},${netX/ip}/${netX/netmask}", "nxc.route=default,${netX/gateway}"] {
            XCTAssertTrue(words.contains(w), "\(w) in \(line)")
        }
        let script = PxeBoot.nodeScript(node: "client1", role: "client", composition: "webserver", base: "http://10.9.0.1:8770", cmdline: line)
        XCTAssertTrue(script.hasPrefix("#!ipxe\n"))
        XCTAssertTrue(script.contains("\nkernel http://10.9.0.1:8770/kernel \(line)\n"), script)
        XCTAssertTrue(script.contains("\ninitrd --name initrd http://10.9.0.1:8770/initrd\n"), script)
        XCTAssertTrue(script.hasSuffix("boot\n"))
        // The generic script chains to the machine's own by its MAC, relative to itself.
        XCTAssertTrue(PxeBoot.genericScript.contains("chain --autofree nodes/${netX/mac:hexhyp}.ipxe || goto notanode"))
        XCTAssertEqual(PxeBoot.hyphenated("52:54:00:ab:cd:01"), "52-54-00-ab-cd-01")
    }

    func testPixiecoreDocument() throws {
        let line = "console=ttyS0 initrd=initrd nxc.host=server"
        let data = try PxeBoot.pixiecoreDocument(node: "server", role: "server", composition: "webserver", base: "http://a:1", cmdline: line)
        let doc = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(Set(doc.keys), ["kernel", "initrd", "cmdline", "message"])
        XCTAssertEqual(doc["kernel"] as? String, "http://a:1/kernel")
        XCTAssertEqual(doc["initrd"] as? [String], ["http://a:1/initrd"])
        XCTAssertEqual(doc["cmdline"] as? String, "console=ttyS0 nxc.host=server", "pixiecore names the initrd itself")
        XCTAssertEqual(doc["message"] as? String, "nxc: server (role server of webserver)")
    }

    func testAddresses() {
        XCTAssertEqual(PxeStart.ipv4("10.1.2.3"), "10.1.2.3")
        XCTAssertEqual(PxeStart.ipv4("localhost"), "127.0.0.1")
        XCTAssertNil(PxeStart.ipv4("no-such-host.invalid"))
        XCTAssertEqual(PxeStart.localAddress(toward: "127.0.0.1"), "127.0.0.1")
        XCTAssertNil(PxeStart.localAddress(toward: "not an address"))
    }

    func testOptionsItRefuses() throws {
        let m = PxeStart()
        var o = StartOptions()
        o.deployVia = .inline
        XCTAssertThrowsError(try m.check(o)) { XCTAssertTrue("\($0)".contains("pxe serves the document over HTTP"), "\($0)") }
        o = StartOptions()
        o.httpPort = 70000
        XCTAssertThrowsError(try m.check(o)) { XCTAssertTrue("\($0)".contains("70000 is not a TCP port"), "\($0)") }
        o = StartOptions()
        o.httpAddress = "nxc.example"
        XCTAssertThrowsError(try m.check(o)) { XCTAssertTrue("\($0)".contains("'nxc.example' is not an IPv4 address"), "\($0)") }
        o = StartOptions()
        o.httpAddress = "10.0.0.1"
        o.httpPort = 8080
        XCTAssertNoThrow(try m.check(o))
    }

    func testInstallOptionsAndTheDiskSystemsParameters() throws {
        let m = PxeStart()
        var o = StartOptions()
        o.installDisk = "vda"
        XCTAssertThrowsError(try m.check(o)) { XCTAssertTrue("\($0)".contains("--install-disk: only with --install"), "\($0)") }
        o.install = true
        XCTAssertNoThrow(try m.check(o))
        XCTAssertTrue(o.requestedFeatures.contains(.install))
        for bad in ["../vda", "vda;reboot", "VDA", "", "/dev/", "1sda", "sd a"] {
            o.installDisk = bad
            XCTAssertThrowsError(try m.check(o), bad) { XCTAssertTrue("\($0)".contains("is not a disk name"), "\($0)") }
        }
        XCTAssertEqual(PxeStart.validDisk("/dev/nvme0n1"), "nvme0n1")
        XCTAssertEqual(PxeStart.validDisk("sda"), "sda")
        // --install is for builds that boot the whole system (ramdisk), not pxe-nfs-store's netroot.
        XCTAssertEqual(m.featureKinds[.install], ["ramdisk"])

        // The disk system's parameters: the g5k-image environment's, without nxc.await=ssh.
        let env = "boot:\n  kernel: \"/boot/vmlinuz\"\n  kernel_params: \"console=tty0 console=ttyS0,115200 rw net.ifnames=0 nxc.await=ssh\"\n"
        XCTAssertEqual(try PxeStart.diskKernelParameters(environment: env, file: "x.env.yaml"), "console=tty0 console=ttyS0,115200 rw net.ifnames=0")
        // A hostile flavour's words reach extlinux.conf as they are (printf %s; no shell reads them).
        let hostile = try String(contentsOfFile: DeployTests.repo + "/Tests/NXCDeployTests/Golden/hostile.g5k-image.env.yaml", encoding: .utf8)
        XCTAssertTrue(try PxeStart.diskKernelParameters(environment: hostile, file: "h.env.yaml").contains("nxc.subst=$(touch${IFS}pwned-subst)"))
        XCTAssertThrowsError(try PxeStart.diskKernelParameters(environment: "boot:\n  kernel: x\n", file: "x.env.yaml")) {
            XCTAssertTrue("\($0)".contains("x.env.yaml") && "\($0)".contains("kernel_params"), "\($0)")
        }
        XCTAssertThrowsError(try PxeStart.diskKernelParameters(environment: "  kernel_params: \"rw a\\u0001b\"\n", file: "y.env.yaml")) {
            XCTAssertTrue("\($0)".contains("not a word of printable ASCII"), "\($0)")
        }
        let words = PxeStart.Install(tar: "/t", sha256: "ab", params: "rw").words(url: "http://a:1/T/install", disk: "vda")
        XCTAssertEqual(words, ["nxc.install=http://a:1/T/install", "nxc.install_sha256=ab", "nxc.install_disk=vda"])
        XCTAssertTrue(PxeStart.localBootScript.hasPrefix("#!ipxe\n") && PxeStart.localBootScript.contains("sanboot --no-describe --drive 0x80"))
    }

    /// A netroot build's machines fetch the initrd without NIC drivers and their own NIC's segment,
    /// found by the PCI IDs iPXE gives; an unknown card gets every driver.
    func testEachMachineGetsItsOwnNICDriver() throws {
        let nic = PxeNIC(text: """
            pci:v00008086d0000100Esv*sd*bc*sc*i* e1000
            pci:v00001AF4d00001000sv*sd*bc*sc*i* virtio_net
            pci:v000015B3d*sv*sd*bc*sc*i* mlx5_core
            pci:v*d*sv*sd*bc02sc00i* anything
            garbage line
            pci:vZZZZd0000sv* broken

            """)
        XCTAssertEqual(nic.aliases.map(\.module), ["e1000", "virtio_net", "mlx5_core"], "class-only and malformed patterns are left out")
        XCTAssertEqual(PxeNIC.pciIDs(busID: "01-80-86-10-0e")?.vendor, "8086")
        XCTAssertEqual(PxeNIC.pciIDs(busID: "01-1A-F4-10-00")?.device, "1000")
        for bad in ["", "02-80-86-10-0e", "01-80-86-10", "01-80-86-10-0g", "../../etc", "01-80-86-10-0e-00"] {
            XCTAssertNil(PxeNIC.pciIDs(busID: bad), bad)
        }
        XCTAssertEqual(nic.module(vendor: "8086", device: "100e"), "e1000")
        XCTAssertEqual(nic.module(vendor: "1af4", device: "1000"), "virtio_net")
        XCTAssertEqual(nic.module(vendor: "15b3", device: "1017"), "mlx5_core", "a vendor-wide pattern")
        XCTAssertNil(nic.module(vendor: "10ec", device: "8168"))
        let script = PxeBoot.nodeScript(node: "server", role: "server", composition: "webserver", base: "http://a:1", cmdline: "x initrd=initrd",
                                        nicSegments: true)
        XCTAssertTrue(script.contains("\nkernel http://a:1/kernel x initrd=initrd initrd=nic\n"), script)
        XCTAssertTrue(script.contains("\ninitrd --name initrd http://a:1/initrd.base\n"
                                      + "initrd --name nic http://a:1/nic/${netX/busid:hexhyp} || initrd --name nic http://a:1/nic/all\n"), script)
    }
}
