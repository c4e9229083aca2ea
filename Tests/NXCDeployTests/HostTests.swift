import Foundation
import XCTest
@testable import NXCComposition
@testable import NXCDeploy
@testable import NXCDeployment
@testable import NXCTestbed
@testable import NXCFlavours
import NXCBuild
import NXCStore

final class HostTests: XCTestCase {
    func testOARNodeFileWithRepeatsPortsAndUsers() throws {
        let text = """
            # reservation 1234
            node-1.nancy.grid5000.fr
            node-1.nancy.grid5000.fr
            node-1.nancy.grid5000.fr

            node-2.nancy.grid5000.fr
            127.0.0.1:2222
            alice@127.0.0.1:2223
            alice@127.0.0.1:2223
            [::1]:2224
            node-2.nancy.grid5000.fr
            """
        let hosts = try HostList.parse(text, file: "nodes")
        XCTAssertEqual(hosts.map(\.description), ["node-1.nancy.grid5000.fr", "node-2.nancy.grid5000.fr", "127.0.0.1:2222",
                                                  "alice@127.0.0.1:2223", "[::1]:2224"])
        XCTAssertEqual(hosts[2].port, 2222)
        XCTAssertEqual(hosts[3].user, "alice")
        XCTAssertEqual(hosts[4].name, "::1")
    }

    func testBadLinesNameFileAndLine() {
        for (text, fragment) in [("a\nb c d\n", "nodes:2: 'b c d': one host per line"),
                                 ("a\nb c\n", "nodes:2: 'c' is not a MAC address"),
                                 ("host:99999\n", "nodes:1: 'host:99999': port 99999 is out of range"),
                                 ("host:ssh\n", "'ssh' is not a port"),
                                 ("@host\n", "bad user name"),
                                 ("h/st\n", "not a host name"),
                                 ("::1\n", "write IPv6 addresses as [ADDRESS]:PORT"),
                                 ("# only a comment\n\n", "nodes: no host")] {
            XCTAssertThrowsError(try HostList.parse(text, file: "nodes")) { e in
                XCTAssertTrue("\(e)".contains(fragment), "\(text.debugDescription): \(e)")
            }
        }
    }

    func webserver() throws -> Composition {
        try Composition.load(path: DeployTests.repo + "/compositions/webserver/composition.yaml")
    }

    func hosts(_ n: Int) -> [TestbedHost] { (1...n).map { TestbedHost(name: "h\($0)") } }

    func testBindingByCountsIsDeterministicAndListsUnusedHosts() throws {
        let b = try RoleDistribution.bind(try webserver(), overrides: [], hosts: hosts(5), source: "nodes")
        XCTAssertEqual(b.entries.map { "\($0.node)@\($0.host)" }, ["server@h1", "client1@h2", "client2@h3"])
        XCTAssertEqual(b.unused.map(\.description), ["h4", "h5"])
    }

    func testBindingByHostNames() throws {
        let b = try RoleDistribution.bind(try webserver(), overrides: ["client=h1,h4"], hosts: hosts(4), source: "nodes")
        XCTAssertEqual(b.entries.map { "\($0.node)@\($0.host)" }, ["server@h2", "client1@h1", "client2@h4"])
        XCTAssertEqual(b.unused.map(\.description), ["h3"])
    }

    /// `-r ROLE=mac=MAC`: machines named by the MAC address the machine file gives them (pxe).
    func testBindingByMAC() throws {
        let hs = try HostList.parse("h1 52:54:00:00:00:01\nh2 52:54:00:00:00:02\nh3 52:54:00:00:00:03\n", file: "nodes")
        let b = try RoleDistribution.bind(try webserver(), overrides: ["server=mac=52-54-00-00-00-03"], hosts: hs, source: "nodes")
        XCTAssertEqual(b.entries.map { "\($0.node)@\($0.host)" }, ["server@h3", "client1@h1", "client2@h2"])
        XCTAssertThrowsError(try RoleDistribution.bind(try webserver(), overrides: ["server=mac=52:54:00:00:00:09"], hosts: hs, source: "nodes")) { e in
            XCTAssertTrue("\(e)".contains("host 'mac=52:54:00:00:00:09' is not in nodes"), "\(e)")
        }
    }

    func testBindingErrors() throws {
        let c = try webserver()
        XCTAssertThrowsError(try RoleDistribution.bind(c, overrides: [], hosts: hosts(2), source: "nodes")) { e in
            XCTAssertTrue("\(e)".contains("nodes: the deployment has 3 nodes but this file lists 2 host(s)"), "\(e)")
        }
        XCTAssertThrowsError(try RoleDistribution.bind(c, overrides: ["client=h9"], hosts: hosts(3), source: "nodes")) { e in
            XCTAssertTrue("\(e)".contains("host 'h9' is not in nodes"), "\(e)")
        }
        XCTAssertThrowsError(try RoleDistribution.bind(c, overrides: ["client=h1,h1"], hosts: hosts(3), source: "nodes")) { e in
            XCTAssertTrue("\(e)".contains("given to two nodes"), "\(e)")
        }
        // Hosts by name only for testbed flavours.
        XCTAssertThrowsError(try RoleDistribution.resolve(c, overrides: ["client=h1"])) { e in
            XCTAssertTrue("\(e)".contains("testbed flavours"), "\(e)")
        }
    }

    func testRoleDistributionFile() throws {
        let p = NSTemporaryDirectory() + "nxc-roles-\(UUID().uuidString).yaml"
        defer { try? FileManager.default.removeItem(atPath: p) }
        try Data("server: 1\nclient: [h3, h2]\n".utf8).write(to: URL(fileURLWithPath: p))
        XCTAssertTrue(RoleDistribution.isDistributionFile(p))
        let o = try RoleDistribution.overrides(fromFile: p)
        XCTAssertEqual(o, ["client=h3,h2", "server=1"])
        let b = try RoleDistribution.bind(try webserver(), overrides: o, hosts: hosts(3), source: "nodes")
        XCTAssertEqual(b.entries.map { "\($0.node)@\($0.host)" }, ["server@h1", "client1@h3", "client2@h2"])
        XCTAssertFalse(RoleDistribution.isDistributionFile(DeployTests.repo + "/compositions/webserver/composition.yaml"))
    }

    /// The kernel command line switch: per-node network for the HTTP way.
    func testNetParamsForHTTP() {
        let node = Deployment.Node(role: "server", address: "10.77.0.1", interfaces: [
            .init(mac: "52:54:00:77:00:01", addresses: ["10.77.0.1/16"], routes: [.init(to: "default", via: "10.77.0.254")]),
            .init(mac: "52:54:00:78:00:01", addresses: []),
        ])
        XCTAssertEqual(KexecStart.netParams(node), "nxc.if=52:54:00:77:00:01,10.77.0.1/16 nxc.route=default,10.77.0.254")
        XCTAssertEqual(KexecStart.netParams(nil), "")
    }

    /// The address other nodes use: unique among hosts (slirp's 10.0.2.15 is on every test VM).
    func testNodeAddressIsUniqueAmongHosts() throws {
        func run(_ node: String, _ mac2: String, _ priv: String) -> TestbedRun {
            var r = TestbedRun(entry: .init(node: node, role: "client", host: TestbedHost(name: "127.0.0.1", port: 22)))
            r.facts["addr"] = """
                [{"ifname":"lo","link_type":"loopback","address":"00:00:00:00:00:00","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host"}]},
                 {"ifname":"eth0","link_type":"ether","address":"52:54:00:78:00:0\(mac2)","addr_info":[{"family":"inet","local":"10.0.2.15","prefixlen":24,"scope":"global"}]},
                 {"ifname":"eth1","link_type":"ether","address":"52:54:00:77:00:0\(mac2)","addr_info":[{"family":"inet","local":"\(priv)","prefixlen":16,"scope":"global"}]}]
                """
            r.facts["route"] = "[]"
            return r
        }
        let doc = Deployment.fromFacts(composition: "webserver", flavour: "g5k-ramdisk", key: "ssh-ed25519 K",
                                       runs: [run("client1", "1", "10.77.0.1"), run("client2", "2", "10.77.0.2")])
        XCTAssertEqual(doc.nodes["client1"]?.address, "10.77.0.1")
        XCTAssertEqual(doc.nodes["client2"]?.address, "10.77.0.2")
        XCTAssertEqual(doc.nodes["client1"]?.interfaces?.count, 2)
        XCTAssertEqual(doc.nodes["client2"]?.ssh?.port, 22)
    }

    func testInlineWhileItFitsThenHTTP() throws {
        XCTAssertEqual(try KexecStart.chooseVia(forced: nil, inlineSize: 1500).0, .inline)
        let big = try KexecStart.chooseVia(forced: nil, inlineSize: 2048)
        XCTAssertEqual(big.0, .http)
        XCTAssertTrue(big.1.contains("do not fit"), big.1)
        XCTAssertEqual(try KexecStart.chooseVia(forced: .http, inlineSize: 100).0, .http)
        XCTAssertThrowsError(try KexecStart.chooseVia(forced: .inline, inlineSize: 5000)) { e in
            XCTAssertTrue("\(e)".contains("5000 bytes"), "\(e)")
        }
    }

    /// The push path for real, without SSH: the tar nxc writes, unpacked by the receive script with
    /// the system's sh and tar; then the check script hashes only files whose size matches.
    func testPushArchiveAndCheckScripts() throws {
        let fm = FileManager.default
        let work = NSTemporaryDirectory() + "nxc-push-\(UUID().uuidString.prefix(8))"
        defer { try? fm.removeItem(atPath: work) }
        let build = work + "/build", remote = work + "/remote"
        try fm.createDirectory(atPath: build, withIntermediateDirectories: true)
        for (f, text) in [("kernel", "K"), ("initrd", String(repeating: "initrd ", count: 50_000)), ("kexec.sh", "#!/bin/sh\n")] {
            try Data(text.utf8).write(to: URL(fileURLWithPath: build + "/" + f))
        }
        let archives = KexecStart.PushArchives(folder: work)
        let tar = try archives.archive(of: ["initrd", "kexec.sh"], from: build)
        XCTAssertEqual(try archives.archive(of: ["initrd", "kexec.sh"], from: build), tar, "made once per set")
        try Command.run(["sh", "-c", KexecScript.receive, "sh", remote], timeout: 30, inputFile: tar)
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: remote).sorted(), ["initrd", "kexec.sh"])
        XCTAssertEqual(try sha256(file: remote + "/initrd"), try sha256(file: build + "/initrd"))
        XCTAssertTrue(fm.isExecutableFile(atPath: remote + "/kexec.sh"))
        archives.removeAll()
        XCTAssertFalse(fm.fileExists(atPath: tar))

        // Sizes: kernel absent remotely, initrd matching, kexec.sh given a wrong size → only initrd hashed.
        let size = { (f: String) in String((try? fm.attributesOfItem(atPath: build + "/" + f)[.size] as? Int) ?? -1) }
        let out = try Command.run(["sh", "-c", KexecScript.check, "sh", remote, "", size("kernel"), size("initrd"), "999"], timeout: 30)
        let shas = out.split(separator: "\n").filter { $0.hasPrefix("@sha ") }
        XCTAssertEqual(shas, ["@sha initrd \(try sha256(file: build + "/initrd"))"], out)
        XCTAssertTrue(out.contains("@arch \(try Command.run(["uname", "-m"]).trimmingCharacters(in: .whitespacesAndNewlines))"), out)
        XCTAssertTrue(out.contains("@tar /"), out)
        // The pre-flight facts: RAM in kB, CPU model and count, NIC drivers (none may be listed), kernel.
        var facts = TestbedRun(entry: .init(node: "n", role: "r", host: TestbedHost(name: "h")))
        facts.record(facts: out)
        XCTAssertGreaterThan(Int(facts.facts["mem"] ?? "") ?? 0, 100_000, out)
        XCTAssertTrue(facts.facts["cpu"]?.range(of: #" x[0-9]+$"#, options: .regularExpression) != nil, out)
        XCTAssertNotNil(facts.facts["nic"], out)
        XCTAssertEqual(facts.facts["kernel"], try Command.run(["uname", "-r"]).trimmingCharacters(in: .whitespacesAndNewlines))

        // A shared folder (the build folder seen by the host at the same path): what the bundle
        // folder lacks, or has at another size, is copied from there and hashed as the local copy.
        let fresh = work + "/fresh"
        let fromShared = try Command.run(["sh", "-c", KexecScript.check, "sh", fresh, build, size("kernel"), size("initrd"), size("kexec.sh")],
                                         timeout: 30)
        XCTAssertEqual(fromShared.split(separator: "\n").filter { $0.hasPrefix("@from ") }.sorted(),
                       ["@from initrd shared", "@from kernel shared", "@from kexec.sh shared"], fromShared)
        for f in ["kernel", "initrd", "kexec.sh"] {
            XCTAssertTrue(fromShared.contains("@sha \(f) \(try sha256(file: build + "/" + f))"), fromShared)
            XCTAssertEqual(try sha256(file: fresh + "/" + f), try sha256(file: build + "/" + f))
        }
        XCTAssertFalse(try fm.contentsOfDirectory(atPath: fresh).contains { $0.hasSuffix(".part") })
        // Already there at the right size: not copied again. A shared file of another size: left alone.
        try Data("other".utf8).write(to: URL(fileURLWithPath: fresh + "/kexec.sh"))
        let again = try Command.run(["sh", "-c", KexecScript.check, "sh", fresh, build, size("kernel"), size("initrd"), "999"], timeout: 30)
        XCTAssertFalse(again.contains("@from "), again)
        XCTAssertEqual(try String(contentsOfFile: fresh + "/kexec.sh", encoding: .utf8), "other")

        // An interrupted stream leaves the old files in place and no half-written one under their names.
        let half = work + "/half.tar"
        let full = try Data(contentsOf: URL(fileURLWithPath: try archives.archive(of: ["initrd"], from: build)))
        try full.prefix(full.count / 2).write(to: URL(fileURLWithPath: half))
        try Data("old".utf8).write(to: URL(fileURLWithPath: remote + "/initrd"))
        XCTAssertNotEqual(try Command.status(["sh", "-c", KexecScript.receive, "sh", remote], timeout: 30, inputFile: half).0, 0)
        XCTAssertEqual(try String(contentsOfFile: remote + "/initrd", encoding: .utf8), "old")
        archives.removeAll()
    }

    /// Kadeploy's verdict: its -o/-n files, else the summary of its output.
    func testKadeployOutcome() throws {
        let work = NSTemporaryDirectory() + "nxc-ka-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        try Data("node-1.nancy.grid5000.fr\n\nnode-2.nancy.grid5000.fr\n".utf8).write(to: URL(fileURLWithPath: work + "/ok"))
        try Data("node-3.nancy.grid5000.fr\n".utf8).write(to: URL(fileURLWithPath: work + "/ko"))
        let files = KadeployStart.outcome(okFile: work + "/ok", koFile: work + "/ko", output: "")
        XCTAssertEqual(files.ok, ["node-1.nancy.grid5000.fr", "node-2.nancy.grid5000.fr"])
        XCTAssertEqual(files.ko, ["node-3.nancy.grid5000.fr"])
        let output = """
            Deployment #D-0f0e started
            Grab the key file /home/u/.ssh/id_rsa.pub
            Nodes correctly deployed on cluster grisou
            The deployment is successful on nodes
            grisou-1.nancy.grid5000.fr
            grisou-4.nancy.grid5000.fr
            The deployment failed on nodes
            grisou-9.nancy.grid5000.fr (Reboot timeout)
            grisou-7.nancy.grid5000.fr
            Deployment #D-0f0e done
            """
        let parsed = KadeployStart.outcome(okFile: work + "/none", koFile: work + "/none", output: output)
        XCTAssertEqual(parsed.ok, ["grisou-1.nancy.grid5000.fr", "grisou-4.nancy.grid5000.fr"])
        XCTAssertEqual(parsed.ko, ["grisou-9.nancy.grid5000.fr", "grisou-7.nancy.grid5000.fr"])
        XCTAssertEqual(KadeployStart.kadeployName(TestbedHost(name: "127.0.0.1", port: 2222, user: "root")), "127.0.0.1:2222")
        XCTAssertEqual(KadeployStart.kadeployName(TestbedHost(name: "grisou-1")), "grisou-1")
    }

    /// The Kadeploy environment description: every key Kadeploy needs, values quoted.
    func testKadeployEnvironment() throws {
        let text = TarballKind.environment(name: "nxc-web", composition: "web", flavour: "g5k-image", tarball: "/p/build/web/g5k-image/web.tar.zst",
                                           kernel: "/boot/vmlinuz-6.1.0-1-amd64", initrd: "/boot/initrd.img-6.1.0-1-amd64",
                                           kernelParams: ["console=tty0", "rw"], author: "alice", settings: nil)
        for line in ["name: \"nxc-web\"", "version: 1", "author: \"alice\"", "visibility: \"private\"", "destructive: false",
                     "os: linux", "arch: x86_64", "  file: \"/p/build/web/g5k-image/web.tar.zst\"", "  kind: tar",
                     "  compression: zstd", "- archive: \"server:///grid5000/postinstalls/g5k-postinstall.tgz\"",
                     "  kernel: \"/boot/vmlinuz-6.1.0-1-amd64\"", "  initrd: \"/boot/initrd.img-6.1.0-1-amd64\"",
                     "  kernel_params: \"console=tty0 rw\"", "filesystem: ext4", "partition_type: 131", "multipart: false"] {
            XCTAssertTrue(text.split(separator: "\n").contains { $0 == line }, "missing line: \(line)\n\(text)")
        }
        // `nxc start` gives Kadeploy a copy naming the image absolutely; only that line changes.
        let rel = TarballKind.environment(name: "nxc-web", composition: "web", flavour: "g5k-image", tarball: "./web.tar.zst",
                                          kernel: "/boot/vmlinuz", initrd: "/boot/initrd.img", kernelParams: [], author: "nxc", settings: nil)
        let abs = KadeployEnvironment.absolutised(rel, directory: "/p/build/web/g5k-image")
        XCTAssertTrue(abs.contains("\n  file: \"/p/build/web/g5k-image/web.tar.zst\"\n"), abs)
        XCTAssertEqual(abs.replacingOccurrences(of: "/p/build/web/g5k-image/", with: "./"), rel)
        let f = try Flavour.load(path: DeployTests.repo + "/flavours/g5k-image.yaml")
        XCTAssertEqual(f.artefact, "tarball")
        XCTAssertEqual(f.start, "kadeploy")
        XCTAssertTrue(f.kernelParams.contains("nxc.await=ssh"))
        XCTAssertEqual(f.settings(as: TarballSettings.self).postinstall?.script, "g5k-postinstall --net none")
    }
}
