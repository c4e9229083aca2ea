import Foundation
import XCTest
import NXCFlavours
@testable import NXCDeploy
@testable import NXCDeployment

/// Options of `nxc start` that a flavour's start method does not take are refused before anything
/// starts, naming the flavours that take them. (Before: `--dry-run` with vm-ramdisk started the VMs
/// and left them running with no state to stop them by; with g5k-image it deployed for real.)
final class StartFeatureTests: XCTestCase {
    func refusal(_ requested: Set<StartFeature>, flavour: String) -> String? {
        let project = Project(directory: DeployTests.repo)
        do {
            try Operations.checkFeatures(requested, flavour: try Flavour.named(flavour, project: project.directory), project: project)
            return nil
        } catch {
            return "\(error)"
        }
    }

    func testDefaultsRequestNothing() {
        XCTAssertEqual(StartOptions().requestedFeatures, [])
    }

    func testEachFlavourTakesWhatItsMethodDoes() {
        XCTAssertNil(refusal([.hosts, .dryRun, .reuse, .deployVia], flavour: "g5k-ramdisk"))
        XCTAssertNil(refusal([.hosts, .reuse, .kadeploy], flavour: "g5k-image"))
        XCTAssertNil(refusal([], flavour: "vm-ramdisk"))
        XCTAssertNil(refusal([], flavour: "docker"))
    }

    /// --store-host: kexec takes it for netroot builds only, so g5k-ramdisk refuses it and names nfs-store.
    func testStoreHostIsForNetrootBuildsOnly() throws {
        XCTAssertNil(refusal([.hosts, .store, .dryRun], flavour: "nfs-store"))
        let m = try XCTUnwrap(refusal([.store], flavour: "g5k-ramdisk"))
        XCTAssertTrue(m.contains("flavour g5k-ramdisk does not take --store-host/--store-dir/--store-url; flavours that do: nfs-store, pxe-nfs-store"), m)
        // pxe the same way: its netroot flavour takes it, the ramdisk one names that one.
        XCTAssertNil(refusal([.hosts, .store, .deployVia], flavour: "pxe-nfs-store"))
        XCTAssertNil(refusal([.hosts, .deployVia], flavour: "pxe"))
        let p = try XCTUnwrap(refusal([.store], flavour: "pxe"))
        XCTAssertTrue(p.contains("flavour pxe does not take --store-host/--store-dir/--store-url; flavours that do: nfs-store, pxe-nfs-store"), p)
        let d = try XCTUnwrap(refusal([.dryRun], flavour: "pxe"))
        XCTAssertTrue(d.contains("flavour pxe does not take --dry-run"), d)
    }

    func testDryRunOutsideTestbedHostsIsRefused() throws {
        let m = try XCTUnwrap(refusal([.dryRun], flavour: "vm-ramdisk"))
        XCTAssertTrue(m.contains("flavour vm-ramdisk does not take --dry-run; flavours that do: g5k-ramdisk"), m)
        let k = try XCTUnwrap(refusal([.dryRun], flavour: "g5k-image"))
        XCTAssertTrue(k.contains("flavour g5k-image does not take --dry-run"), k)
    }

    func testEveryRefusedOptionIsNamed() throws {
        var o = StartOptions()
        o.machineFile = "/tmp/machines"
        o.httpPort = 8080
        let m = try XCTUnwrap(refusal(o.requestedFeatures, flavour: "docker"))
        XCTAssertTrue(m.contains("does not take -m/--machines, --deploy-via/--http-address/--http-listen/--http-port; flavours that do: g5k-ramdisk"), m)
        o = StartOptions()
        o.kadeployCommand = "/opt/kadeploy3"
        XCTAssertTrue(try XCTUnwrap(refusal(o.requestedFeatures, flavour: "g5k-ramdisk")).contains("--kadeploy; flavours that do: g5k-image"))
    }

    /// Through `nxc start`: refused before a VM, a run folder or the current deployment exists.
    func testStartRefusesBeforeStartingAnything() async throws {
        let dir = try Hostile.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: DeployTests.repo + "/compositions/hello/composition.yaml", toPath: dir + "/composition.yaml")
        var o = StartOptions()
        o.dryRun = true
        do {
            _ = try await Operations.start(project: Project(directory: dir), composition: nil, flavour: "vm-ramdisk", roles: [],
                                           identityFile: nil, timeout: 5, options: o, progress: { _ in })
            XCTFail("a dry run of vm-ramdisk started")
        } catch {
            XCTAssertTrue("\(error)".contains("does not take --dry-run"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/.nxc"), "nothing written")
    }

    /// What a method cannot use as given is refused by the method, before anything is bound or written.
    func checkError(_ flavour: String, _ edit: (inout StartOptions) -> Void) throws -> String? {
        var o = StartOptions()
        edit(&o)
        do {
            try Flavour.named(flavour, project: DeployTests.repo).startMethod.check(o)
            return nil
        } catch {
            return "\(error)"
        }
    }

    func testMethodsCheckTheirOptions() throws {
        XCTAssertEqual(try checkError("g5k-ramdisk") { $0.httpPort = 0 },
                       "error: --http-port: 0 is not a TCP port (1-65535); leave it out for an ephemeral one")
        XCTAssertEqual(try checkError("g5k-ramdisk") { $0.deployVia = .inline; $0.httpPort = 8080 },
                       "error: --deploy-via inline: --http-address, --http-listen and --http-port set up the HTTP server, which inline does not start")
        XCTAssertEqual(try checkError("g5k-ramdisk") { $0.httpAddress = "front end" },
                       "error: --http-address: 'front end' is neither an IPv4 address nor a host name")
        XCTAssertEqual(try checkError("g5k-ramdisk") { $0.httpAddress = "frontend" },
                       "error: --http-address: nxc's HTTP server listens on an IPv4 address; 'frontend' is not one (give --http-listen ADDRESS)")
        XCTAssertNil(try checkError("g5k-ramdisk") { $0.httpAddress = "frontend"; $0.httpListen = "0.0.0.0"; $0.httpPort = 8080 })
        XCTAssertEqual(try checkError("g5k-image") { $0.kadeployCommand = "/nonexistent/kadeploy3" },
                       "error: --kadeploy: /nonexistent/kadeploy3 not found: run nxc on a Grid'5000 frontend, or give --kadeploy PROGRAM")
        XCTAssertNil(try checkError("g5k-image") { $0.kadeployCommand = "/nonexistent/kadeploy3"; $0.reuse = true },
                     "--reuse runs no Kadeploy")
        XCTAssertNil(try checkError("g5k-image") { $0.kadeployCommand = "/bin/true" })
    }

    /// Every option a method takes comes with its phrase for `nxc start --help`, and `.hosts` follows
    /// from binding hosts.
    func testTakenOptionsAreExplained() {
        for m in Registry.startMethods {
            for (feature, help) in m.optionHelp {
                XCTAssertFalse(help.isEmpty, "\(m.name) \(feature)")
                XCTAssertNotEqual(feature, .hosts, "\(m.name): -m follows from bindsHosts")
            }
            XCTAssertEqual(m.takes.contains(.hosts), m.bindsHosts, m.name)
        }
    }
}
