import Foundation
import XCTest
import NXCArchive
@testable import NXCBuild
@testable import NXCComposition
@testable import NXCDeploy
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
                                    containerPrefix: "nxc-webserver", header: "golden file of Tests/NXCDeployTests", cgroup: .v1)
        let golden = DeployTests.repo + "/Tests/NXCDeployTests/Golden/webserver.docker-compose.yml"
        if ProcessInfo.processInfo.environment["NXC_UPDATE_GOLDEN"] == "1" {
            try Data(text.utf8).write(to: URL(fileURLWithPath: golden))
        }
        XCTAssertEqual(text, try String(contentsOfFile: golden, encoding: .utf8))
        XCTAssertFalse(text.contains("privileged"), "no privileged containers")
        XCTAssertFalse(text.contains("cap_add"), "no added capabilities")
        XCTAssertTrue(text.contains("\"127.0.0.1::80/tcp\""), "published on loopback by default")
        // The v2 layout binds the whole tree instead of the named hierarchy.
        let v2 = ComposeFile.text(composition: c, nodes: nodes, image: "i", deployment: "d", containerPrefix: "p", header: "", cgroup: .v2)
        XCTAssertTrue(v2.contains("\"/sys/fs/cgroup:/sys/fs/cgroup:rw\""))
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
            XCTAssertEqual(artefacts.map(\.name), ["image.tar"])
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
