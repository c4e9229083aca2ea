import Foundation
import XCTest
@testable import NXCDeployment

/// Errors carry their context as values (path, flavour, errno, the program's own error) and print
/// as they did when they were strings.
final class DeployErrorTests: XCTestCase {
    func testValuesPrintAsBefore() {
        XCTAssertEqual("\(DeployError.notBuilt(path: "/p/build/web/docker/image.id", flavour: "docker"))",
                       "error: /p/build/web/docker/image.id is missing; run `nxc build -f docker` first")
        XCTAssertEqual("\(DeployError.file("write", path: "/p/.nxc/run/x/state.json", reason: "No space left on device"))",
                       "error: cannot write /p/.nxc/run/x/state.json: No space left on device")
        XCTAssertEqual("\(DeployError.systemCall("socket", errno: EMFILE, context: "HTTP server"))",
                       "error: HTTP server: socket: Too many open files")
        XCTAssertEqual("\(DeployError.systemCall("pipe", errno: EMFILE))", "error: pipe: Too many open files")
        XCTAssertEqual("\(DeployError.tooManyNodes(count: 300, limit: 250, unit: "VMs"))",
                       "error: at most 250 VMs per deployment, asked for 300")
        XCTAssertEqual("\(DeployError.badInput("machines:3", problem: "'a b': one host per line, without spaces"))",
                       "error: machines:3: 'a b': one host per line, without spaces")
        XCTAssertEqual("\(DeployError.needsRoot(flavour: "nspawn", because: "overlay mounts need it"))",
                       "error: flavour nspawn runs as root (overlay mounts need it); run nxc start as root")
        struct Failed: Error, CustomStringConvertible { var description: String { "bsdtar failed with exit status 1" } }
        XCTAssertEqual("\(DeployError.commandFailed("unpacking a into t", underlying: Failed()))",
                       "error: unpacking a into t: bsdtar failed with exit status 1")
    }

    /// The cases that replaced the last `.invalid(String)` sites: each prints its context.
    func testEveryCaseSaysWhereAndWhat() {
        XCTAssertEqual("\(DeployError.notRunning(composition: "web", flavour: "docker"))",
                       "error: web (docker) is not running; run `nxc start`")
        XCTAssertEqual("\(DeployError.needsHosts(flavour: "g5k-ramdisk"))",
                       "error: flavour g5k-ramdisk deploys onto reserved hosts: give -m MACHINE_FILE or set $OAR_NODEFILE")
        XCTAssertEqual("\(DeployError.optionsNotTaken(flavour: "docker", options: ["--dry-run"], takenBy: ["g5k-ramdisk"]))",
                       "error: flavour docker does not take --dry-run; flavours that do: g5k-ramdisk")
        XCTAssertEqual("\(DeployError.optionsNotTaken(flavour: "docker", options: ["--kadeploy"], takenBy: []))",
                       "error: flavour docker does not take --kadeploy")
        XCTAssertEqual("\(DeployError.failedOn("the checks", [("node-1", "no kexec"), ("node-2:2222", "no answer")], unit: "host"))",
                       "error: 2 host(s) failed the checks: node-1: no kexec; node-2:2222: no answer")
        XCTAssertEqual("\(DeployError.processFailed("qemu", problem: "wrote no PID file in 10 s", log: "/r/server.qemu.log"))",
                       "error: qemu: wrote no PID file in 10 s (see /r/server.qemu.log)")
        XCTAssertEqual("\(DeployError.tooLarge("the kernel command line", size: 5000, limit: 2048, hint: "use fewer nodes"))",
                       "error: the kernel command line would be 5000 bytes, over the limit of 2048; use fewer nodes")
        XCTAssertEqual("\(DeployError.serviceDown("Docker engine", detail: "`docker info`: refused", hint: "start dockerd"))",
                       "error: no Docker engine answers (`docker info`: refused); start dockerd")
        XCTAssertEqual("\(DeployError.couldNotStop(["server (qemu 123)"]))", "error: could not stop: server (qemu 123)")
        XCTAssertEqual("\(DeployError.badOption("--http-port", problem: "0 is not a TCP port"))", "error: --http-port: 0 is not a TCP port")
    }

    /// The value keeps what a caller may act on.
    func testContextIsThereToMatch() {
        let e: Error = DeployError.notBuilt(path: "/b/kernel", flavour: "vm-ramdisk")
        guard case DeployError.notBuilt(let path, let flavour) = e else { return XCTFail("\(e)") }
        XCTAssertEqual(path, "/b/kernel")
        XCTAssertEqual(flavour, "vm-ramdisk")
    }
}
