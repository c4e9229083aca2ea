import Foundation
import XCTest
import NXCArchive
@testable import NXCBuild
@testable import NXCComposition
@testable import NXCDeploy
@testable import NXCDeployment
@testable import NXCTestbed
@testable import NXCFlavours
import NXCStore

/// The docker flavour's files without an engine: the compose file (golden) and the image archive,
/// read back with libarchive and every digest checked.
final class DockerArtefactTests: XCTestCase {
    func webserver() throws -> Composition {
        try Composition.load(path: DeployTests.repo + "/compositions/webserver/composition.yaml")
    }

    func testComposeFileGolden() throws {
        let c = try webserver()
        let nodes = try RoleDistribution.resolve(c, overrides: [])
        let text = ComposeFile.text(composition: c, nodes: nodes, image: "nxc-webserver:docker", deployment: "./deployment.json",
                                    containerPrefix: "nxc-webserver", header: "golden file of Tests/NXCDeployTests",
                                    cgroups: .init(version: .v1, driver: .cgroupfs))
        let golden = DeployTests.repo + "/Tests/NXCDeployTests/Golden/webserver.docker-compose.yml"
        if ProcessInfo.processInfo.environment["NXC_UPDATE_GOLDEN"] == "1" {
            try Data(text.utf8).write(to: URL(fileURLWithPath: golden))
        }
        XCTAssertEqual(text, try String(contentsOfFile: golden, encoding: .utf8))
        XCTAssertFalse(text.contains("privileged"), "no privileged containers")
        XCTAssertFalse(text.contains("cap_add"), "no added capabilities")
        XCTAssertFalse(text.contains("security_opt"), "the engine's default seccomp profile")
        XCTAssertTrue(text.contains("\"127.0.0.1::80/tcp\""), "published on loopback by default")
        XCTAssertEqual(Self.cgroupBinds(text), ["/sys/fs/cgroup/systemd/nxc/nxc-webserver-server",
                                                "/sys/fs/cgroup/systemd/nxc/nxc-webserver-client1",
                                                "/sys/fs/cgroup/systemd/nxc/nxc-webserver-client2"])
    }

    /// Host cgroup directories a compose file binds writable into containers, each checked to be
    /// bound at its own path and to be the cgroup parent of the service that binds it.
    static func cgroupBinds(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        // One block per service: from its `  NAME:` line to the next.
        var blocks: [[String]] = []
        for l in text.split(separator: "\n").map(String.init) {
            if l.hasPrefix("  "), !l.hasPrefix("   ") { blocks.append([]) }
            if !blocks.isEmpty { blocks[blocks.count - 1].append(l) }
        }
        var binds: [String] = []
        for block in blocks {
            let parent = block.first { $0.hasPrefix("    cgroup_parent: ") }
                .map { String($0.dropFirst("    cgroup_parent: ".count)).replacingOccurrences(of: "\"", with: "") } ?? ""
            for l in block where l.hasPrefix("      - \"/sys/fs/cgroup") {
                let parts = l.dropFirst("      - ".count).replacingOccurrences(of: "\"", with: "").split(separator: ":").map(String.init)
                XCTAssertEqual(parts.count, 3, l, file: file, line: line)
                guard parts.count == 3 else { continue }
                // Read-only: only the v1 `name=systemd` hierarchy, where the writable bind is mounted.
                if parts[2] == "ro" {
                    XCTAssertEqual(parts[0...1], ["/sys/fs/cgroup/systemd", "/sys/fs/cgroup/systemd"], l, file: file, line: line)
                    continue
                }
                XCTAssertEqual(parts[2], "rw", l, file: file, line: line)
                XCTAssertEqual(parts[0], parts[1], "bound at its own path: \(l)", file: file, line: line)
                XCTAssertFalse(parent.isEmpty, "no cgroup_parent beside \(l)", file: file, line: line)
                XCTAssertTrue(parent.hasPrefix("/") ? parts[0].hasSuffix(parent) : parts[0].hasSuffix("/" + parent),
                              "\(parts[0]) is not the service's cgroup parent \(parent)", file: file, line: line)
                binds.append(parts[0])
            }
        }
        return binds
    }

    /// Each engine layout gives each container its own cgroup parent and binds only that one
    /// writable: never a hierarchy, never the tree (before: the whole `name=systemd` hierarchy, or
    /// on v2 the whole /sys/fs/cgroup, read-write in every container).
    func testComposeCgroupsOwnSubtreeOnly() throws {
        let c = try webserver()
        let nodes = try RoleDistribution.resolve(c, overrides: ["client=1"])
        func text(_ v: ComposeFile.Cgroups.Version, _ d: ComposeFile.Cgroups.Driver) -> String {
            ComposeFile.text(composition: c, nodes: nodes, image: "i", deployment: "d", containerPrefix: "nxc-web-1a2b",
                             header: "", cgroups: .init(version: v, driver: d))
        }
        XCTAssertEqual(Self.cgroupBinds(text(.v2, .cgroupfs)),
                       ["/sys/fs/cgroup/nxc/nxc-web-1a2b-server", "/sys/fs/cgroup/nxc/nxc-web-1a2b-client"])
        XCTAssertEqual(Self.cgroupBinds(text(.v1, .systemd)),
                       ["/sys/fs/cgroup/systemd/nxc.slice/nxc-nxc_web_1a2b_server.slice",
                        "/sys/fs/cgroup/systemd/nxc.slice/nxc-nxc_web_1a2b_client.slice"])
        XCTAssertEqual(Self.cgroupBinds(text(.v2, .systemd)),
                       ["/sys/fs/cgroup/nxc.slice/nxc-nxc_web_1a2b_server.slice",
                        "/sys/fs/cgroup/nxc.slice/nxc-nxc_web_1a2b_client.slice"])
        XCTAssertTrue(text(.v1, .systemd).contains("    cgroup_parent: \"nxc-nxc_web_1a2b_server.slice\"\n"))
        // v1: the writable bind's mount point lies in a read-only view of the hierarchy.
        XCTAssertTrue(text(.v1, .cgroupfs).contains("      - \"/sys/fs/cgroup/systemd:/sys/fs/cgroup/systemd:ro\"\n"))
        XCTAssertFalse(text(.v2, .cgroupfs).contains("\"/sys/fs/cgroup:"))
        for v in [ComposeFile.Cgroups.Version.v1, .v2] {
            for d in [ComposeFile.Cgroups.Driver.cgroupfs, .systemd] {
                let t = text(v, d)
                XCTAssertFalse(t.contains("\"/sys/fs/cgroup:/sys/fs/cgroup:rw\"") || t.contains("\"/sys/fs/cgroup/systemd:/sys/fs/cgroup/systemd:rw\""),
                               "\(v) \(d): a whole hierarchy is writable")
            }
        }
    }

    func testCgroupsFromEngineAndLeftovers() throws {
        // What Docker 20.10 said here (v1/hybrid, cgroupfs), and on a v2 stand-in with its default
        // private cgroup namespaces, where the container could not start.
        let here = ComposeFile.Cgroups.parse(engineInfo: "1 cgroupfs name=seccomp,profile=default\n")
        XCTAssertEqual(here, .init(version: .v1, driver: .cgroupfs))
        XCTAssertNil(here?.problem)
        let v2 = ComposeFile.Cgroups.parse(engineInfo: "2 cgroupfs name=seccomp,profile=default name=cgroupns\n")
        XCTAssertEqual(v2, .init(version: .v2, driver: .cgroupfs, privateNamespaces: true))
        XCTAssertTrue(v2?.problem?.contains("\"default-cgroupns-mode\": \"host\"") == true, v2?.problem ?? "no problem")
        XCTAssertEqual(ComposeFile.Cgroups.parse(engineInfo: "2 systemd"), .init(version: .v2, driver: .systemd))
        for bad in ["", "1", "3 cgroupfs", "1 none", "cgroupfs 1", "1 cgroupfs extra"] {
            XCTAssertNil(ComposeFile.Cgroups.parse(engineInfo: bad), bad)
        }
        let fs = ComposeFile.Cgroups(version: .v1, driver: .cgroupfs)
        XCTAssertEqual(fs.leftovers(container: "p-server", hierarchies: ["/sys/fs/cgroup/memory", "/sys/fs/cgroup/systemd"]),
                       ["/sys/fs/cgroup/memory/nxc/p-server", "/sys/fs/cgroup/systemd/nxc/p-server"])
        XCTAssertEqual(ComposeFile.Cgroups(version: .v1, driver: .systemd).leftovers(container: "p-server", hierarchies: ["/x"]), [],
                       "systemd removes a slice with its last scope")

        // This machine's hierarchies: each v1 one once (aliases are symbolic links), or the v2 root.
        let fm = FileManager.default
        let root = NSTemporaryDirectory() + "nxc-cgroups-\(UUID().uuidString.prefix(8))"
        defer { try? fm.removeItem(atPath: root) }
        for d in ["v1/cpu,cpuacct", "v1/memory", "v1/systemd", "v2/init.scope"] {
            try fm.createDirectory(atPath: root + "/" + d, withIntermediateDirectories: true)
        }
        try fm.createSymbolicLink(atPath: root + "/v1/cpu", withDestinationPath: "cpu,cpuacct")
        try Data().write(to: URL(fileURLWithPath: root + "/v2/cgroup.controllers"))
        XCTAssertEqual(ComposeFile.Cgroups.hierarchies(root: root + "/v1"), ["cpu,cpuacct", "memory", "systemd"].map { root + "/v1/" + $0 })
        XCTAssertEqual(ComposeFile.Cgroups.hierarchies(root: root + "/v2"), [root + "/v2"])
    }

    /// `systemctl is-active A B C` exits 0 when any one unit is active: a node is ready only when
    /// every line says `active` (redis-server restarting, slurmd failed, the rest active was "ready").
    func testServicesReadyOnlyWhenAllStarted() {
        let units = ["redis-server", "postgresql", "slurmd"]
        XCTAssertNil(Readiness.servicesVerdict(units: units, output: "active\nactive\nactive\n"))
        // A unit that waits for the deployment's secret (sent once start returns) is started.
        XCTAssertNil(Readiness.servicesVerdict(units: units, output: "activating\nactive\nactive\n"))
        XCTAssertEqual(Readiness.servicesVerdict(units: units, output: "inactive\nactive\nactive\n"),
                       "services: redis-server inactive, postgresql active, slurmd active")
        XCTAssertEqual(Readiness.servicesVerdict(units: units, output: "deactivating\nactive\nfailed\n"),
                       "failed: service(s) slurmd failed")
        XCTAssertEqual(Readiness.servicesVerdict(units: units, output: "inactive\ninactive\ninactive\n"),
                       "services: redis-server inactive, postgresql inactive, slurmd inactive")
        // Fewer lines than units (systemctl cut short): not ready.
        XCTAssertNotNil(Readiness.servicesVerdict(units: units, output: "active\n"))
    }

    func testPortSpecs() {
        let l = SourceLocation(file: "c.yaml", line: 1, column: 1)
        XCTAssertEqual(PortSpec.parse("80", location: l)?.composeForm, "127.0.0.1::80/tcp")
        XCTAssertEqual(PortSpec.parse("8080:80", location: l)?.composeForm, "127.0.0.1:8080:80/tcp")
        XCTAssertEqual(PortSpec.parse("0.0.0.0:53:53/udp", location: l)?.composeForm, "0.0.0.0:53:53/udp")
        for bad in ["", "http", "0", "70000", "80/sctp", "1.2.3:80:80", "a:b", "8080:80:80:80", "-1", "+80"] {
            XCTAssertNil(PortSpec.parse(bad, location: l), bad)
        }
    }

    /// Builds the image from a small tree standing in for a root file system, reads the archive
    /// back and checks what `docker load` relies on: manifest → config named by its SHA-256 →
    /// diff IDs equal to the SHA-256 of each layer; the payload layer holds the agent and role files;
    /// a second build with another role file reuses the system layer and changes only the payload.
    func testImageArchiveDigests() async throws {
        let fm = FileManager.default
        let work = NSTemporaryDirectory() + "nxc-image-\(UUID().uuidString.prefix(8))"
        defer { try? fm.removeItem(atPath: work) }
        let root = work + "/rootfs"
        for d in ["/usr/bin", "/usr/share/doc/x", "/etc", "/dev", "/run/lock", "/var/lib/apt/lists/partial"] {
            try fm.createDirectory(atPath: root + d, withIntermediateDirectories: true)
        }
        try Data("#!/bin/sh\n".utf8).write(to: URL(fileURLWithPath: root + "/usr/bin/tool"))
        try Data("doc".utf8).write(to: URL(fileURLWithPath: root + "/usr/share/doc/x/README"))
        try Data("list".utf8).write(to: URL(fileURLWithPath: root + "/var/lib/apt/lists/deb.debian.org_Packages"))
        try fm.createSymbolicLink(atPath: root + "/bin", withDestinationPath: "usr/bin")
        let agent = work + "/agent"
        try Data("agent binary".utf8).write(to: URL(fileURLWithPath: agent))
        let flavour = try Flavour.load(path: DeployTests.repo + "/flavours/docker.yaml")
        let store = Store(root: work + "/store")

        func build(_ c: Composition, into out: String) async throws -> [String: ArchiveEntry] {
            try fm.createDirectory(atPath: out, withIntermediateDirectories: true)
            let ctx = ArtefactContext(composition: c, flavour: flavour,
                                      rootfs: BuiltRootfs(root: root, hash: "0123456789abcdef", ranMmdebstrap: false, reused: true),
                                      payload: ImagePayload(composition: c, agentBinary: agent, masked: flavour.mask),
                                      store: store, outputDirectory: out, progress: { _ in })
            let artefacts = try await DockerImageKind().emit(ctx)
            XCTAssertEqual(artefacts.map(\.name), ["image.tar", "image.id"])
            var byPath: [String: ArchiveEntry] = [:]
            for e in try ArchiveReader.entries(path: out + "/image.tar") { byPath[e.path] = e }
            return byPath
        }

        let c = try webserver()
        let image = try await build(c, into: work + "/out1")
        let manifestBytes = try XCTUnwrap(image["manifest.json"]).data
        let manifest = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(manifestBytes)) as? [[String: Any]])
        XCTAssertEqual(manifest.count, 1)
        let configName = try XCTUnwrap(manifest[0]["Config"] as? String)
        let config = try XCTUnwrap(image[configName]).data
        XCTAssertEqual(configName, sha256(bytes: config) + ".json", "config named by its digest (the image ID)")
        XCTAssertEqual(manifest[0]["RepoTags"] as? [String], ["nxc-webserver:docker"])
        let configJSON = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(config)) as? [String: Any])
        let diffIDs = try XCTUnwrap((configJSON["rootfs"] as? [String: Any])?["diff_ids"] as? [String])
        let layers = try XCTUnwrap(manifest[0]["Layers"] as? [String])
        XCTAssertEqual(layers.count, 2)
        XCTAssertEqual(diffIDs, try layers.map { "sha256:" + sha256(bytes: try XCTUnwrap(image[$0]).data) })
        let idFile = try String(contentsOfFile: work + "/out1/image.id", encoding: .utf8)
        XCTAssertEqual(idFile, "sha256:\(sha256(bytes: config)) nxc-webserver:docker\n")
        let run = try XCTUnwrap(configJSON["config"] as? [String: Any])
        XCTAssertEqual(run["Cmd"] as? [String], ["/usr/lib/systemd/systemd"])
        XCTAssertEqual(run["StopSignal"] as? String, "SIGRTMIN+3")

        // The layers' contents.
        let layerDir = NSTemporaryDirectory() + "nxc-layer-\(UUID().uuidString.prefix(8)).tar"
        defer { try? fm.removeItem(atPath: layerDir) }
        func members(_ layer: String) throws -> [String: ArchiveEntry] {
            try Data(try XCTUnwrap(image[layer]).data).write(to: URL(fileURLWithPath: layerDir))
            var m: [String: ArchiveEntry] = [:]
            for e in try ArchiveReader.entries(path: layerDir) { m[e.path] = e }
            return m
        }
        let system = try members(layers[0])
        XCTAssertEqual(system["usr/bin/tool"]?.data, Array("#!/bin/sh\n".utf8))
        XCTAssertEqual(system["bin"]?.linkTarget, "usr/bin")
        XCTAssertNil(system["usr/share/doc/x/README"], "documentation left out")
        XCTAssertNil(system["var/lib/apt/lists/deb.debian.org_Packages"], "apt lists left out")
        XCTAssertNotNil(system["var/lib/apt/lists/partial"] ?? system["var/lib/apt/lists/partial/"], system.keys.sorted().joined(separator: " "))
        XCTAssertNil(system["run/lock/"] ?? system["run/lock"], "what the engine mounts is left out")
        XCTAssertNotNil(system["run/"] ?? system["run"], "the mount points themselves stay")
        let payload = try members(layers[1])
        XCTAssertEqual(payload["usr/sbin/nxc-agent"]?.data, Array("agent binary".utf8))
        XCTAssertEqual(payload["usr/share/nxc/roles/server/var/www/html/index.html"]?.data, Array("hello from nxc\n".utf8))
        XCTAssertNotNil(payload["etc/nxc/composition.json"])
        XCTAssertEqual(payload["etc/systemd/system/getty@tty1.service"]?.linkTarget, "/dev/null")

        // Another role file: same system layer (from the store), new payload, new image ID.
        var edited = c
        edited.roles[0].files[0].content = Array("edited\n".utf8)
        let image2 = try await build(edited, into: work + "/out2")
        let manifest2 = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(try XCTUnwrap(image2["manifest.json"]).data)) as? [[String: Any]])
        let layers2 = try XCTUnwrap(manifest2[0]["Layers"] as? [String])
        XCTAssertEqual(layers2[0], layers[0], "system layer reused")
        XCTAssertNotEqual(layers2[1], layers[1])
        XCTAssertNotEqual(manifest2[0]["Config"] as? String, configName)
        // Same inputs, same bytes.
        _ = try await build(c, into: work + "/out3")
        XCTAssertEqual(try sha256(file: work + "/out3/image.tar"), try sha256(file: work + "/out1/image.tar"))
    }
}
