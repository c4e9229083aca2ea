import Foundation
import XCTest
import NXCBuild
import NXCDeploy
import NXCDeployment
import NXCTestbed

/// pxe end to end, as a site's machines boot: a network namespace holds a bridge (the site's
/// switch), a DHCP server (dnsmasq, one address per MAC, its boot file nxc's iPXE script) and nxc
/// itself; QEMU VMs with no kernel boot from the network (the iPXE ROM of Debian's ipxe-qemu) on taps
/// of that bridge: one with an empty disk is installed as stockhost's store, three with no disk
/// become compositions/webserver's nodes. Runs as root when NXC_E2E=1; nothing leaves the
/// namespace, which is deleted at the end.
final class PxeTests: XCTestCase {
    static let repo = VMRamdiskTests.repo
    var nxc: String { ProcessInfo.processInfo.environment["NXC_BIN"] ?? Self.repo + "/.build/release/nxc" }
    var project = ""
    var namespace = ""
    var started: [Started] = []
    /// The store's home export, mounted here with sshfs (phase 3).
    var home = ""
    struct Timeout: Error, CustomStringConvertible { var description: String }

    static let subnet = "10.93.0"
    static func mac(_ i: Int) -> String { String(format: "52:54:00:93:00:%02x", 0x10 + i) }

    override func setUpWithError() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["NXC_E2E"] == "1", "set NXC_E2E=1 to run the end-to-end tests")
        try XCTSkipUnless(geteuid() == 0, "the PXE test makes a network namespace with a bridge and taps (root)")
        project = NSTemporaryDirectory() + "nxc-pxe-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: project, withIntermediateDirectories: true)
    }

    override func tearDown() {
        // By PID: the VMs, dnsmasq, nxc start if it still runs.
        for p in started.reversed() where p.status == nil { _ = Processes.stop(p.pid, grace: 5) }
        if !home.isEmpty { _ = try? Command.status(["umount", "-l", home], timeout: 30) }
        if !namespace.isEmpty { _ = try? Command.status(["ip", "netns", "del", namespace], timeout: 30) }
        if !project.isEmpty { try? FileManager.default.removeItem(atPath: project) }
    }

    var session: NxcSession { NxcSession(nxc: nxc, project: project) }

    func inNamespace(_ argv: [String]) -> [String] { ["ip", "netns", "exec", namespace] + argv }

    /// A program started in the background: its PID, and the file its exit status is written to.
    struct Started {
        var pid: Int32
        var statusFile: String
        /// Its exit status once it has ended, nil while it runs.
        var status: Int32? {
            (try? String(contentsOfFile: statusFile, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
    }

    /// Starts `argv` in the namespace (`here`: outside it) with its output in `log`; it is stopped by its PID at tearDown.
    /// (A child of a subshell that waits for it and writes its status: Foundation's Process left it a zombie here.)
    func launch(_ argv: [String], log: String, environment: [String: String]? = nil, here: Bool = false) throws -> Started {
        let tag = "\(project)/.bg-\(started.count)"
        let script = #"log=$1; st=$2; pidf=$3; shift 3; ( "$@" >"$log" 2>&1 </dev/null & echo $! >"$pidf"; wait $!; echo $? >"$st" ) >/dev/null 2>&1 </dev/null &"#
        try Command.run(["sh", "-c", script, "sh", log, tag + ".status", tag + ".pid"] + (here ? argv : inNamespace(argv)),
                        environment: environment, timeout: 30)
        var pid: Int32?
        try waitFor("the PID of \(argv[0])", timeout: 10) {
            pid = (try? String(contentsOfFile: tag + ".pid", encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            return pid != nil
        }
        let s = Started(pid: pid!, statusFile: tag + ".status")
        started.append(s)
        return s
    }

    func waitFor(_ what: String, timeout: Double, _ done: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !done() {
            guard Date() < deadline else { throw Timeout(description: "gave up waiting for \(what) after \(Int(timeout)) s") }
            Thread.sleep(forTimeInterval: 0.5)
        }
    }

    /// Starts `nxc ARGS` in the namespace; returns once it says which machines to boot (or ended).
    func startServing(_ args: [String], log: String) throws -> Started {
        let p = try launch([nxc] + args + ["--project", project], log: log, environment: session.environment())
        try waitFor("nxc's PXE server", timeout: 120) { text(log).contains("PXE: boot these machines") || p.status != nil }
        return p
    }

    func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    /// A machine on tap`tap` with no kernel that boots from the network, or with `disk`: from the
    /// network, then from that disk (it reboots after an install), or from its disk alone (`diskOnly`:
    /// no boot ROM on its NIC).
    @discardableResult
    func powerOn(_ name: String, tap: Int, mac: String, memory: Int, cpus: Int = 1, disk: String? = nil, diskOnly: Bool = false) throws -> Started {
        var argv = ["qemu-system-x86_64", "-name", name, "-machine", "pc", "-accel", "tcg,tb-size=128", "-cpu", "max",
                    "-smp", String(cpus), "-m", String(memory), "-nodefaults", "-display", "none",
                    "-netdev", "tap,id=n0,ifname=tap\(tap),script=no,downscript=no",
                    "-device", "virtio-net-pci,netdev=n0,mac=\(mac)" + (diskOnly ? ",romfile=" : ""),
                    "-serial", "file:\(project)/console-\(name)\(diskOnly ? "-disk" : "").log"]
        if let disk {
            argv += ["-drive", "file=\(disk),format=raw,if=virtio,cache=unsafe", "-boot", diskOnly ? "c" : "order=nc"]
        } else {
            argv += ["-no-reboot", "-boot", "n"]
        }
        return try launch(argv, log: project + "/qemu-\(name).log")
    }

    /// Waits for a start, prints its output (and, if it failed, the consoles and DHCP log); its status.
    func finish(_ p: Started, log: String, machines: [String]) throws -> (Int32, String) {
        try waitFor("nxc start", timeout: 1200) { p.status != nil }
        let out = text(log)
        print(out)
        let status = p.status ?? -1
        if status != 0 {
            for m in machines { print("console of \(m):\n" + String(text("\(project)/console-\(m).log").suffix(3000))) }
            print(text(project + "/dnsmasq.log"))
        }
        return (status, out)
    }

    func nxcIn(_ args: [String], timeout: Double = 120) throws -> (Int32, String) {
        // --project right after the subcommand: after `--` it would be part of the remote command.
        let argv = [nxc, args[0], "--project", project] + args.dropFirst()
        let r = try Command.status(inNamespace(argv), environment: session.environment(), timeout: timeout)
        print("$ nxc \(args.joined(separator: " ")) → \(r.0)\n\(r.1)")
        return r
    }

    /// The store host, a machine with an empty disk, is installed from the network as stockhost's
    /// store (pxe --install: it boots the system in RAM, writes stockhost's g5k-image system to its
    /// disk with extlinux, reboots into it); then three diskless machines boot webserver from it
    /// (pxe-nfs-store: a small initrd that mounts the system over NFS); server is put on the third
    /// machine by its MAC. Between the two, the store is powered off and started from its disk alone.
    func testDisklessMachinesNetbootAsWebserverFromAnInstalledStoreHost() throws {
        let web = Self.repo + "/compositions/webserver"
        let stock = Self.repo + "/Tests/EndToEndTests/Fixtures/stockhost"
        XCTAssertEqual(try session.run(["build", "-f", "pxe", stock], timeout: 2400).status, 0)
        XCTAssertEqual(try session.run(["build", "-f", "g5k-image", stock], timeout: 2400).status, 0)
        XCTAssertEqual(try session.run(["build", "-f", "pxe-nfs-store", web], timeout: 2400).status, 0)
        let storeBuild = project + "/build/stockhost/pxe", webBuild = project + "/build/webserver/pxe-nfs-store"
        for f in ["kernel", "initrd", "boot.ipxe", "manifest.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: storeBuild + "/" + f), "missing \(f)")
        }
        try assertManifestListsEveryFile(storeBuild, generated: ["boot.ipxe"])
        let dnsmasq = try XCTUnwrap(["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"].first { FileManager.default.isExecutableFile(atPath: $0) },
                                    "dnsmasq (dnsmasq-base) is installed by `make test`")

        // The site: a bridge in a namespace of its own, four taps, DHCP with one address per MAC.
        namespace = "nxcpxe\(getpid() % 100000)"
        let server = "\(Self.subnet).1"
        let port = 8770
        let setup: [[String]] = [["ip", "netns", "add", namespace]] + [
            ["ip", "link", "set", "lo", "up"],
            ["ip", "link", "add", "br0", "type", "bridge"],
            ["ip", "address", "add", "\(server)/24", "dev", "br0"],
            ["ip", "link", "set", "br0", "up"],
        ].map(inNamespace) + (1...4).flatMap { i in [
            ["ip", "tuntap", "add", "dev", "tap\(i)", "mode", "tap"],
            ["ip", "link", "set", "tap\(i)", "master", "br0"],
            ["ip", "link", "set", "tap\(i)", "up"],
        ].map(inNamespace) }
        for argv in setup { _ = try Command.run(argv, timeout: 30) }
        var dhcp = [dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--port=0",
                    "--interface=br0", "--bind-interfaces", "--user=root", "--dhcp-range=\(Self.subnet).100,\(Self.subnet).199,255.255.255.0,1h",
                    "--dhcp-leasefile=\(project)/leases", "--log-dhcp", "--dhcp-boot=http://\(server):\(port)/boot.ipxe"]
        var machines = ""
        for i in 1...4 {
            dhcp.append("--dhcp-host=\(Self.mac(i)),\(Self.subnet).1\(i)")
            // The store is in the machine file too, as in $OAR_NODEFILE: --store-host leaves it out.
            machines += "\(Self.subnet).1\(i) \(Self.mac(i))\n"
        }
        let storeAddress = "\(Self.subnet).14"
        try Data(machines.utf8).write(to: URL(fileURLWithPath: project + "/machines"))
        try Data("\(storeAddress) \(Self.mac(4))\n".utf8).write(to: URL(fileURLWithPath: project + "/store-machine"))
        _ = try launch(dhcp, log: project + "/dnsmasq.log")

        // 1. The store host: stockhost's store role, installed on its empty disk (pxe --install).
        let storeLog = project + "/start-store.log"
        let storeStart = try startServing(["start", "-f", "pxe", "--install", "-m", project + "/store-machine", "-r", "host=0",
                                           "--http-port", String(port), stock], log: storeLog)
        XCTAssertTrue(text(storeLog).contains("PXE: point the DHCP server's boot file for iPXE clients at http://\(server):\(port)/boot.ipxe"),
                      text(storeLog))
        // pixiecore's API, as pixiecore would ask it.
        let request = project + "/request"
        try Data("GET /v1/boot/\(Self.mac(4)) HTTP/1.0\r\n\r\n".utf8).write(to: URL(fileURLWithPath: request))
        let api = try Command.run(inNamespace(["nc", "-N", "-w", "10", server, String(port)]), timeout: 30, inputFile: request)
        XCTAssertTrue(api.hasPrefix("HTTP/1.0 200"), api)
        let body = try XCTUnwrap(api.range(of: "\r\n\r\n").map { String(api[$0.upperBound...]) })
        let doc = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any], body)
        XCTAssertEqual(doc["kernel"] as? String, "http://\(server):\(port)/kernel")
        XCTAssertTrue((doc["cmdline"] as? String)?.contains("nxc.host=store") ?? false, body)
        XCTAssertTrue((doc["cmdline"] as? String)?.contains("nxc.install=http://\(server):\(port)/") ?? false, body)
        let storeDisk = project + "/store-disk.raw"
        XCTAssertTrue(FileManager.default.createFile(atPath: storeDisk, contents: nil))
        XCTAssertEqual(truncate(storeDisk, 4 << 30), 0)
        // Two vCPUs (alone on this machine while it installs): its download, SHA-256 and unpack run side by side.
        var storeVM = try powerOn("store", tap: 4, mac: Self.mac(4), memory: 2560, cpus: 2, disk: storeDisk)
        let (storeStatus, storeOut) = try finish(storeStart, log: storeLog, machines: ["store"])
        XCTAssertEqual(storeStatus, 0, storeOut)
        XCTAssertTrue(storeOut.contains("1 of 1 host(s) up"), storeOut)
        XCTAssertTrue(storeOut.contains("store reports: installed"), storeOut)
        guard storeStatus == 0 else { return }
        let size = { (f: String) in (try? FileManager.default.attributesOfItem(atPath: f)[.size] as? Int) ?? 0 }
        let storeReport = try TestbedReport.load(path: project + "/deploy/stockhost.pxe.report.json")
        XCTAssertEqual(storeReport.hosts.map(\.receivedFrom), ["nxc's HTTP server (network boot, then its disk system)"])
        XCTAssertEqual(storeReport.hosts.first?.phases.map(\.phase), [.install, .boot])
        XCTAssertGreaterThanOrEqual(storeReport.hosts.first?.bytesReceived ?? 0, size(storeBuild + "/kernel") + size(storeBuild + "/initrd")
                                    + size(project + "/build/stockhost/g5k-image/stockhost.tar.zst"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: project + "/deploy/stockhost.pxe.boot/v1/boot/\(Self.mac(4))"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: project + "/deploy/stockhost.pxe.boot/nodes/\(Self.mac(4).replacingOccurrences(of: ":", with: "-")).ipxe"))
        // It runs from its disk (extlinux, the image's kernel and initramfs), with the address DHCP gives.
        let who = try nxcIn(["exec", "store", "--", "sh", "-c", "hostname; ip -4 -o address show dev eth0; cat /proc/cmdline; findmnt -n -o SOURCE,FSTYPE /"])
        XCTAssertEqual(who.0, 0, who.1)
        XCTAssertTrue(who.1.hasPrefix("store\n"), who.1)
        XCTAssertTrue(who.1.contains("inet \(storeAddress)/24"), who.1)
        XCTAssertTrue(who.1.contains("root=UUID="), who.1)
        XCTAssertFalse(who.1.contains("nxc.install"), who.1)
        XCTAssertTrue(who.1.hasSuffix("/dev/vda1 ext4\n"), who.1)

        // Powered off and started again from its disk alone (no boot ROM), it answers as its node, and
        // serves the diskless machines next.
        XCTAssertTrue(Processes.stop(storeVM.pid, grace: 5))
        storeVM = try powerOn("store", tap: 4, mac: Self.mac(4), memory: 1024, cpus: 2, disk: storeDisk, diskOnly: true)
        var again = (Int32(-1), "")
        try waitFor("the store from its disk alone", timeout: 600) {
            again = (try? nxcIn(["exec", "--composition", "stockhost", "store", "--", "sh", "-c",
                                 "cat /etc/nxc/hostname /run/nxc/ready; systemctl is-active nfs-server; findmnt -n -o SOURCE /"], timeout: 30)) ?? again
            return again.0 == 0 || storeVM.status != nil
        }
        XCTAssertEqual(again.1, "store\nstore\nactive\n/dev/vda1\n", String(text(project + "/console-store-disk.log").suffix(3000)))
        guard again.0 == 0 else { return }

        // 2. Three diskless machines: webserver from the store host (pxe-nfs-store).
        let webLog = project + "/start-web.log"
        let webStart = try startServing(["start", "-f", "pxe-nfs-store", "-m", project + "/machines", "--store-host", "root@\(storeAddress)",
                                         "-r", "server=mac=\(Self.mac(3))", "--http-port", String(port), web], log: webLog)
        XCTAssertTrue(text(webLog).contains("store host, exports the system tree read-only to \(Self.subnet).0/24: nfs://\(storeAddress)/srv/nxc/store/"),
                      text(webLog))
        let diskless = try (1...3).map { i in try powerOn("m\(i)", tap: i, mac: Self.mac(i), memory: 1024) }
        let (webStatus, webOut) = try finish(webStart, log: webLog, machines: ["m1", "m2", "m3"])
        XCTAssertEqual(webStatus, 0, webOut)
        XCTAssertTrue(webOut.contains("3 of 3 host(s) up"), webOut)
        XCTAssertFalse(webOut.contains("not fetched"), webOut)
        XCTAssertFalse(webOut.contains("hosts left alone"), "the store host is not a spare: \(webOut)")
        guard webStatus == 0 else { return }

        // The composition's own test; server on the third machine, its root an overlay over NFS.
        let driver = try nxcIn(["driver"], timeout: 300)
        XCTAssertEqual(driver.0, 0, driver.1)
        let node = try nxcIn(["exec", "server", "--", "sh", "-c", "hostname; cat /etc/nxc/role; ip -4 -o address show dev eth0; findmnt -n -o FSTYPE /"])
        XCTAssertEqual(node.0, 0, node.1)
        XCTAssertTrue(node.1.hasPrefix("server\nserver\n"), node.1)
        XCTAssertTrue(node.1.contains("inet \(Self.subnet).13/24"), node.1)
        XCTAssertTrue(node.1.hasSuffix("overlay\n"), node.1)
        // The server's state folder (webserver: state: [/var/log/nginx]) is its own, read-write on the store:
        // what nginx logged (the driver's requests) is there.
        let logs = try nxcIn(["exec", "server", "--", "findmnt", "-n", "-o", "SOURCE,FSTYPE", "/var/log/nginx"])
        XCTAssertTrue(logs.1.hasPrefix("\(storeAddress):/srv/nxc/state/webserver/server"), logs.1)
        // (nginx keeps its log open: the NFS client writes it back on its own schedule, or when asked.)
        XCTAssertEqual(try nxcIn(["exec", "server", "--", "sync", "/var/log/nginx/access.log"]).0, 0)
        let kept = try nxcIn(["exec", "--composition", "stockhost", "store", "--", "sh", "-c",
                              "ls /srv/nxc/state/webserver; grep -c 'GET / ' /srv/nxc/state/webserver/server/var/log/nginx/access.log"])
        XCTAssertEqual(kept.0, 0, kept.1)
        XCTAssertTrue(kept.1.hasPrefix("server\n"), "only the role that keeps state has a folder: \(kept.1)")
        XCTAssertGreaterThanOrEqual(Int(kept.1.split(separator: "\n").last ?? "") ?? 0, 1, kept.1)
        let clients = try nxcIn(["exec", "--composition", "stockhost", "store", "--", "ls", "/proc/fs/nfsd/clients"])
        XCTAssertEqual(clients.0, 0, clients.1)
        XCTAssertGreaterThanOrEqual(clients.1.split(whereSeparator: \.isWhitespace).count, 3, "the three machines are NFS clients of the store")

        // A package installed on a node goes into its writable layer: the tree on the store is unchanged.
        let deb = try Self.tinyDeb(in: project)
        let copied = try nxcIn(["cp", deb, "client1:/tmp"])
        XCTAssertEqual(copied.0, 0, copied.1)
        let installed = try nxcIn(["exec", "client1", "--", "apt-get", "install", "-y", "/tmp/" + (deb as NSString).lastPathComponent])
        XCTAssertEqual(installed.0, 0, installed.1)
        XCTAssertEqual(try nxcIn(["exec", "client1", "--", "cat", "/usr/share/nxc-hello/hello"]).1, "hello from a package\n")
        XCTAssertNotEqual(try nxcIn(["exec", "server", "--", "test", "-e", "/usr/share/nxc-hello/hello"]).0, 0)
        let onStore = try nxcIn(["exec", "--composition", "stockhost", "store", "--", "sh", "-c", "ls /srv/nxc/store/*/usr/share/nxc-hello 2>&1; true"])
        XCTAssertTrue(onStore.1.contains("No such file"), "the store's tree is unchanged: \(onStore.1)")

        // Each machine received the kernel, the initrd without NIC drivers and its own NIC's segment
        // (virtio_net, found by the PCI IDs iPXE gave) from nxc's server, and nothing else.
        let report = try TestbedReport.load(path: project + "/deploy/webserver.pxe-nfs-store.report.json")
        let small = size(webBuild + "/kernel") + size(webBuild + "/initrd.base") + size(webBuild + "/nic-virtio_net.cpio.zst")
        XCTAssertGreaterThan(size(webBuild + "/nic-virtio_net.cpio.zst"), 0)
        XCTAssertLessThan(small, size(webBuild + "/kernel") + size(webBuild + "/initrd"), "less than the initrd with every NIC driver")
        XCTAssertEqual(report.hosts.count, 3)
        for h in report.hosts {
            XCTAssertEqual(h.state, "up")
            XCTAssertEqual(h.receivedFrom, "nxc's HTTP server (network boot)")
            XCTAssertGreaterThanOrEqual(h.bytesReceived, small, "\(h.host)")
            XCTAssertLessThan(h.bytesReceived, small + 1_000_000, "\(h.host)")
        }
        XCTAssertFalse(webOut.contains("that machine gets every one"), webOut)

        // 3. The site's file server instead (as a Grid'5000 home): the store exports /srv/home read-write
        // with root_squash, this machine mounts it (sshfs here, NFS on a frontend) and nxc writes the
        // system there as an image; one machine boots it with no server of nxc's but the boot files.
        let export = try nxcIn(["exec", "--composition", "stockhost", "store", "--", "sh", "-c",
                                "mkdir -p /srv/home/jdoe && chown 1000:1000 /srv/home/jdoe && "
                                + "echo '/srv/home \(Self.subnet).0/24(rw,root_squash,no_subtree_check,insecure)' > /etc/exports.d/home.exports && exportfs -ra"])
        XCTAssertEqual(export.0, 0, export.1)
        home = project + "/home"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        _ = try launch(["sshfs", "-f", "root@\(storeAddress):/srv/home", home, "-o", "ProxyCommand=ip netns exec \(namespace) nc %h %p",
                        "-o", "IdentityFile=\(project)/.nxc/id_ed25519", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                        "-o", "BatchMode=yes"], log: project + "/sshfs.log", here: true)
        try waitFor("sshfs on \(home)", timeout: 60) { FileManager.default.fileExists(atPath: home + "/jdoe") }
        for m in diskless { XCTAssertTrue(Processes.stop(m.pid, grace: 5)) }
        try Data("\(Self.subnet).13 \(Self.mac(3))\n".utf8).write(to: URL(fileURLWithPath: project + "/machines-one"))
        let dir = home + "/jdoe/exp/store"
        let homeLog = project + "/start-home.log"
        let homeStart = try startServing(["start", "-f", "pxe-nfs-store", "-m", project + "/machines-one", "--store-dir", dir,
                                          "--store-url", "nfs://\(storeAddress)/srv/home/jdoe/exp/store", "-r", "client=0",
                                          "--http-port", String(port), web], log: homeLog)
        try powerOn("m3", tap: 3, mac: Self.mac(3), memory: 1024)
        let (homeStatus, homeOut) = try finish(homeStart, log: homeLog, machines: ["m3"])
        XCTAssertEqual(homeStatus, 0, homeOut)
        XCTAssertTrue(homeOut.contains("store folder: wrote the system as \(dir)/"), homeOut)
        XCTAssertTrue(homeOut.contains("the nodes mount nfs://\(storeAddress)/srv/home/jdoe/exp/store (read-only) and the image in it; nxc runs no server"), homeOut)
        XCTAssertTrue(homeOut.contains("warning: role server keeps /var/log/nginx in RAM"), homeOut)
        guard homeStatus == 0 else { return }
        let described = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: webBuild + "/netroot.json"))) as? [String: Any]
        let tree = try XCTUnwrap(described?["tree"] as? String)
        let booted = try nxcIn(["exec", "server", "--", "sh", "-c", "hostname; findmnt -n -o FSTYPE /; cat /proc/cmdline; curl -sf http://localhost/"])
        XCTAssertEqual(booted.0, 0, booted.1)
        XCTAssertTrue(booted.1.hasPrefix("server\noverlay\n"), booted.1)
        XCTAssertTrue(booted.1.contains("nxc.root=nfs://\(storeAddress)/srv/home/jdoe/exp/store/\(tree).sqfs "), booted.1)
        XCTAssertTrue(booted.1.hasSuffix("hello from nxc\n"), booted.1)
        // On the file server: the image nxc wrote, world-readable (the node reads it as nobody).
        let image = try nxcIn(["exec", "--composition", "stockhost", "store", "--", "stat", "-c", "%a %s", "/srv/home/jdoe/exp/store/\(tree).sqfs"])
        XCTAssertEqual(image.1, "644 \(size(dir + "/\(tree).sqfs"))\n")
        let homeReport = try TestbedReport.load(path: project + "/deploy/webserver.pxe-nfs-store.report.json")
        XCTAssertEqual(homeReport.hosts.map(\.state), ["up"])
        XCTAssertLessThan(homeReport.hosts.first?.bytesReceived ?? .max, small + 1_000_000, "the image is read over NFS, not sent by nxc")
    }

    /// A package of one file, made with dpkg-deb (no network: the VMs reach no mirror).
    static func tinyDeb(in dir: String) throws -> String {
        let root = dir + "/nxc-hello"
        try FileManager.default.createDirectory(atPath: root + "/DEBIAN", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/usr/share/nxc-hello", withIntermediateDirectories: true)
        try Data("Package: nxc-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: nxc tests <nxc@localhost>\nDescription: one file\n".utf8)
            .write(to: URL(fileURLWithPath: root + "/DEBIAN/control"))
        try Data("hello from a package\n".utf8).write(to: URL(fileURLWithPath: root + "/usr/share/nxc-hello/hello"))
        let deb = dir + "/nxc-hello_1.0_all.deb"
        try Command.run(["dpkg-deb", "--root-owner-group", "-b", root, deb], timeout: 60)
        return deb
    }
}
