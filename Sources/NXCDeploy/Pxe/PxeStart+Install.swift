import Foundation
import NXCArchive
import NXCDeployment
import NXCTestbed
import NXCFlavours
import NXCStore

/// `--install`: each machine boots this build (the installer: the node in RAM), writes the
/// composition's disk system (its g5k-image build) to its disk with extlinux, reports to nxc's
/// server, and reboots; nxc then answers its network boot with "boot from the disk", and waits
/// until it answers SSH as its node, booted after its report.
extension PxeStart {
    /// What an install serves beside the boot files.
    struct Install {
        /// The g5k-image system unpacked from its tar.zst (in the run folder; removed after the start).
        var tar: String
        var sha256: String
        /// The disk system's kernel parameters (extlinux's APPEND after root=UUID=).
        var params: String
        /// The cmdline words of the installer.
        func words(url: String, disk: String?) -> [String] {
            ["nxc.install=\(url)", "nxc.install_sha256=\(sha256)"] + (disk.map { ["nxc.install_disk=\($0)"] } ?? [])
        }
    }

    /// The image build beside this one (build/COMPOSITION/g5k-image), its kernel parameters, and its
    /// system unpacked into the run folder with its SHA-256.
    static func prepareInstall(_ ctx: StartContext) throws -> Install {
        let image = (ctx.buildDirectory as NSString).deletingLastPathComponent + "/g5k-image"
        let name = ctx.composition.name
        let tarball = image + "/\(name).tar.zst", env = image + "/\(name).env.yaml"
        for f in [tarball, env] where !FileManager.default.fileExists(atPath: f) {
            throw DeployError.notBuilt(path: f, flavour: "g5k-image")
        }
        let params = try diskKernelParameters(environment: try String(contentsOfFile: env, encoding: .utf8), file: env)
        let tar = ctx.runDirectory + "/system.tar"
        ctx.progress("install: unpacking \(tarball) for the machines (they have no zstd)")
        let started = Date()
        let part = tar + ".part"
        guard FileManager.default.createFile(atPath: part, contents: nil), let out = FileHandle(forWritingAtPath: part) else {
            throw DeployError.file("create", path: part, reason: String(cString: strerror(errno)))
        }
        let digest = SHA256Digest()
        var size: Int64 = 0
        do {
            defer { try? out.close() }
            try ArchiveReader.decompress(path: tarball) { chunk in
                digest.update(chunk)
                size += Int64(chunk.count)
                try out.write(contentsOf: Data(chunk))
            }
        }
        guard rename(part, tar) == 0 else { throw DeployError.file("rename", path: part, reason: String(cString: strerror(errno))) }
        ctx.progress(String(format: "install: %d MiB of system in %.1f s", Int(size >> 20), Date().timeIntervalSince(started)))
        return Install(tar: tar, sha256: SHA256Digest.hex(digest.finalize()), params: params)
    }

    /// The `boot: kernel_params:` of a g5k-image environment file, without `nxc.await=ssh` (the
    /// installed node knows its name: its /etc/nxc comes from the installer). Words of printable
    /// ASCII only: they go into extlinux.conf as one line.
    static func diskKernelParameters(environment text: String, file: String) throws -> String {
        let key = "  kernel_params: "
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key) }),
              let value = try? JSONDecoder().decode(String.self, from: Data(line.dropFirst(key.count).utf8)) else {
            throw DeployError.badInput(file, problem: "no quoted boot.kernel_params: rebuild it with `nxc build -f g5k-image`")
        }
        let words = value.split(separator: " ").map(String.init).filter { $0 != "nxc.await=ssh" }
        if let bad = words.first(where: { w in !w.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7f } }) {
            throw DeployError.badInput(file, problem: "boot.kernel_params: '\(FlavourRules.printable(bad))' is not a word of printable ASCII")
        }
        return words.joined(separator: " ")
    }

    /// A disk name as --install-disk takes it: `vda`, `sda`, `nvme0n1`, with or without /dev/.
    static func validDisk(_ text: String) -> String? {
        let name = text.hasPrefix("/dev/") ? String(text.dropFirst(5)) : text
        guard let first = name.unicodeScalars.first, (0x61...0x7a).contains(first.value), name.count <= 32,
              name.unicodeScalars.allSatisfy({ (0x61...0x7a).contains($0.value) || (0x30...0x39).contains($0.value) }) else { return nil }
        return name
    }

    /// The script a machine gets once installed: boot from its first disk (BIOS), else from the next boot device.
    static let localBootScript = """
        #!ipxe
        echo nxc: installed on its disk; booting from it
        sanboot --no-describe --drive 0x80 || exit 1

        """

    /// The install phase: until the machine's installer reports (`installed`, or the step that
    /// failed), then its network boot says "boot from the disk". Returns when it reported installed.
    static func waitForInstall(_ r: inout TestbedRun, serving: DeploymentServer, timeout: Double,
                               progress: @Sendable (String) -> Void) -> Date? {
        let node = r.entry.node
        let mac = r.entry.host.mac ?? ""
        var at: Date?
        r.state = "installing"
        _ = r.phase(.install, policy: RetryPolicy(retries: 0)) { r, _ in
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if let (event, when) = serving.reports[node] {
                    if event == "installed" {
                        serving.setRoute("/nodes/\(PxeBoot.hyphenated(mac)).ipxe", .data(Data(localBootScript.utf8), type: "text/plain"))
                        // pixiecore ignores a machine its API does not know: it boots from its next device.
                        serving.setRoute("/v1/boot/\(mac)", nil)
                        progress("\(node): installed on its disk; booting from it")
                        at = when
                        return .ok
                    }
                    let step = event.hasPrefix("failed-") ? String(event.dropFirst("failed-".count)) : event
                    return .fail("the installer failed at '\(step)' (its console or `journalctl -u nxc-install` says why)", .install)
                }
                Thread.sleep(forTimeInterval: 0.5)
            }
            return .fail("its installer did not report within \(Int(timeout)) s; did it boot from the network?", .install)
        }
        if r.failed { progress("\(r.entry.host): \(r.error ?? "")") }
        return at
    }
}
