import Foundation
import XCTest
@testable import NXCComposition
import NXCBuild
@testable import NXCDeploy
@testable import NXCDeployment
@testable import NXCFlavours

final class DeployTests: XCTestCase {
    /// A key pair's paths for state files and argv (nothing reads them).
    static let identity = SSHIdentity(privateKey: "/k/id", publicKey: "ssh-ed25519 AAAA k")
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    func webserver() throws -> Composition {
        try Composition.load(path: Self.repo + "/compositions/webserver/composition.yaml")
    }

    func testRoleDistributionFromCounts() throws {
        let nodes = try RoleDistribution.resolve(try webserver(), overrides: [])
        XCTAssertEqual(nodes.map(\.node), ["server", "client1", "client2"])
        XCTAssertEqual(nodes.map(\.role), ["server", "client", "client"])
    }

    func testRoleDistributionOverrides() throws {
        let c = try webserver()
        XCTAssertEqual(try RoleDistribution.resolve(c, overrides: ["client=3"]).map(\.node), ["server", "client1", "client2", "client3"])
        XCTAssertEqual(try RoleDistribution.resolve(c, overrides: ["client=1"]).map(\.node), ["server", "client"])
        XCTAssertEqual(try RoleDistribution.resolve(c, overrides: ["client=0"]).map(\.node), ["server"])
        XCTAssertEqual(try RoleDistribution.resolve(c, overrides: ["server=2", "client=1"]).map(\.node), ["server1", "server2", "client"])
    }

    func testRoleDistributionErrors() throws {
        let c = try webserver()
        for (arg, fragment) in [("nope=1", "no role 'nope'"), ("client=x", "not a node count"), ("client", "expected ROLE=N"),
                                ("client=-1", "not a node count")] {
            XCTAssertThrowsError(try RoleDistribution.resolve(c, overrides: [arg])) { e in
                XCTAssertTrue("\(e)".contains(fragment), "\(arg): \(e)")
                XCTAssertTrue("\(e)".contains(arg), "\(arg): names the argument: \(e)")
            }
        }
        XCTAssertThrowsError(try RoleDistribution.resolve(c, overrides: ["server=0", "client=0"])) { e in
            XCTAssertTrue("\(e)".contains("no node"), "\(e)")
        }
        let clash = try Composition.parse("roles:\n  client:\n  client1:\n", file: "c.yaml", directory: "/tmp", defaultName: "x")
        XCTAssertThrowsError(try RoleDistribution.resolve(clash, overrides: ["client=2"])) { e in
            XCTAssertTrue("\(e)".contains("collides"), "\(e)")
        }
    }

    func testDeploymentDocumentRoundTripAndShape() throws {
        let nodes = try RoleDistribution.resolve(try webserver(), overrides: [])
        let doc = QemuStart.deployment(composition: "webserver", flavour: "vm-ramdisk", nodes: nodes,
                                       keys: ["ssh-ed25519 AAAA test"], ports: ["server": 2201, "client1": 2202, "client2": 2203])
        let data = try doc.encoded()
        let back = try JSONDecoder().decode(Deployment.self, from: data)
        XCTAssertEqual(back, doc)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(json["version"] as? Int, 1)
        XCTAssertEqual(json["authorized_keys"] as? [String], ["ssh-ed25519 AAAA test"])
        let server = try XCTUnwrap((json["nodes"] as? [String: Any])?["server"] as? [String: Any])
        XCTAssertEqual(server["role"] as? String, "server")
        XCTAssertEqual(server["address"] as? String, "10.77.0.1")
        XCTAssertEqual((server["ssh"] as? [String: Any])?["port"] as? Int, 2201)
        let ifs = try XCTUnwrap(server["interfaces"] as? [[String: Any]])
        XCTAssertEqual(ifs.first?["mac"] as? String, "52:54:00:77:00:01")
        XCTAssertEqual(doc.nodes["client2"]?.address, "10.77.0.3")
        XCTAssertEqual(try doc.resolve("client"), ["client1", "client2"])
        XCTAssertEqual(try doc.resolve("server"), ["server"])
        XCTAssertThrowsError(try doc.resolve("db")) { e in XCTAssertTrue("\(e)".contains("neither a node")) }
    }

    func testDeploymentLoadRejectsOtherVersions() throws {
        let p = NSTemporaryDirectory() + "nxc-deploy-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: p) }
        try Data(#"{"version":2,"composition":"x","flavour":"y","authorized_keys":[],"nodes":{},"order":[]}"#.utf8)
            .write(to: URL(fileURLWithPath: p))
        XCTAssertThrowsError(try Deployment.load(path: p)) { e in XCTAssertTrue("\(e)".contains("version 2"), "\(e)") }
    }

    func testShellQuote() {
        XCTAssertEqual(ShellQuote.quote("abc"), "abc")
        XCTAssertEqual(ShellQuote.quote(""), "''")
        XCTAssertEqual(ShellQuote.quote("a b"), "'a b'")
        XCTAssertEqual(ShellQuote.quote("it's"), "'it'\\''s'")
        XCTAssertEqual(ShellQuote.join(["echo", "$HOME", "a;b"]), "echo '$HOME' 'a;b'")
    }

    /// The quoting survives a real shell: what sh receives is the argv we meant.
    func testShellQuoteThroughSh() throws {
        let argv = ["printf", "%s|", "a b", "it's", "$(id)", "`x`", "\\n", "*", ""]
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", ShellQuote.join(argv)]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        p.waitUntilExit()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(text, "a b|it's|$(id)|`x`|\\n|*||")
    }

    /// Golden file: the launch script users run by hand.
    func testLaunchScriptGolden() throws {
        let flavour = try Flavour.load(path: Self.repo + "/flavours/vm-ramdisk.yaml")
        let script = LaunchScript.generic(composition: try webserver(), flavour: flavour)
        let golden = Self.repo + "/Tests/NXCDeployTests/Golden/webserver.vm-ramdisk.launch.sh"
        if ProcessInfo.processInfo.environment["NXC_UPDATE_GOLDEN"] == "1" {
            try Data(script.utf8).write(to: URL(fileURLWithPath: golden))
        }
        XCTAssertEqual(script, try String(contentsOfFile: golden, encoding: .utf8))
        XCTAssertTrue(script.contains("restrict=on"), "user-mode network is restricted to the host")
        XCTAssertTrue(script.contains("hostfwd=tcp:127.0.0.1:"), "SSH forward bound to loopback only")
        XCTAssertFalse(script.contains("mcast"), "no multicast")
    }

    func testFlavourFilesParse() throws {
        let f = try Flavour.load(path: Self.repo + "/flavours/vm-ramdisk.yaml")
        XCTAssertEqual(f.name, "vm-ramdisk")
        XCTAssertEqual(f.artefact, "ramdisk")
        XCTAssertEqual(f.start, "qemu")
        XCTAssertTrue(f.packages.contains("openssh-server"))
        let bad = NSTemporaryDirectory() + "nxc-flavour-\(UUID().uuidString).yaml"
        defer { try? FileManager.default.removeItem(atPath: bad) }
        try Data("name: x\nartefact: floppy\nstart: qemu\n".utf8).write(to: URL(fileURLWithPath: bad))
        XCTAssertThrowsError(try Flavour.load(path: bad)) { e in
            XCTAssertTrue("\(e)".contains(bad) && "\(e)".contains("artefact"), "\(e)")
        }
    }

    func testFreePortIsFree() throws {
        let p = try Processes.freePort()
        XCTAssertGreaterThan(p, 0)
        XCTAssertFalse(Processes.portInUse(p))
    }

    /// The flavour's masks go into the image, except units a role runs; role files go under the roles folder.
    func testImagePayloadMasksAndRoleFiles() throws {
        let c = try Composition.parse("roles:\n  n:\n    services: [fstrim.timer]\n    files:\n      /etc/a/b: { content: x }\n",
                                      file: "c.yaml", directory: "/tmp", defaultName: "t")
        let p = ImagePayload(composition: c, agentBinary: "/bin/true", masked: ["fstrim.timer", "e2scrub_reap.service"])
        let links = p.entries.compactMap { e -> String? in if case .symlink(let path, "/dev/null") = e { return path } else { return nil } }
        XCTAssertEqual(links, ["/etc/systemd/system/e2scrub_reap.service"])
        XCTAssertTrue(p.entries.contains(.file(path: "/usr/share/nxc/roles/n/etc/a/b", content: Array("x".utf8), mode: 0o644)))
        XCTAssertTrue(p.entries.contains(.directory(path: "/usr/share/nxc/roles/n/etc/a", mode: 0o755)))
        let json = String(decoding: ImagePayload.compositionJSON(c), as: UTF8.self)
        XCTAssertTrue(json.contains("\"services\" : [\n        \"fstrim.timer\"\n      ]"), json)
    }

    /// Images that boot from the network carry the disk installer (pxe --install), others do not; its
    /// script is valid sh for dash (the images' /bin/sh) and runs only when the kernel asks for it.
    func testImagePayloadCarriesTheInstallerWhenAsked() throws {
        let c = try Composition.parse("roles:\n  n: {}\n", file: "c.yaml", directory: "/tmp", defaultName: "t")
        let paths = { (p: ImagePayload) in Set(p.entries.map(\.path)) }
        XCTAssertFalse(paths(ImagePayload(composition: c, agentBinary: "/bin/true")).contains(DiskInstaller.path))
        let with = ImagePayload(composition: c, agentBinary: "/bin/true", installer: true)
        XCTAssertTrue(with.entries.contains(.file(path: DiskInstaller.path, content: Array(DiskInstaller.script.utf8), mode: 0o755)))
        XCTAssertTrue(with.entries.contains(.symlink(path: "/etc/systemd/system/multi-user.target.wants/nxc-install.service",
                                                     target: DiskInstaller.unitPath)))
        XCTAssertTrue(DiskInstaller.unit.contains("ConditionKernelCommandLine=nxc.install\n"))
        let file = NSTemporaryDirectory() + "nxc-install-\(UUID().uuidString.prefix(8)).sh"
        try Data(DiskInstaller.script.utf8).write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let (status, out) = try Command.status(["dash", "-n", file], timeout: 30)
        XCTAssertEqual(status, 0, out)
        // Without nxc.install= on the command line it does nothing and succeeds (here: this machine's cmdline).
        if !((try? String(contentsOfFile: "/proc/cmdline", encoding: .utf8)) ?? "").contains("nxc.install=") {
            XCTAssertEqual(try Command.status(["dash", file], timeout: 30).0, 0)
        }
    }
}
