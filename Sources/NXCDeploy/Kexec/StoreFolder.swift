import Foundation
import NXCDeployment
import NXCBuild
import NXCFlavours
import NXCStore

/// nfs-store's system in a folder the nodes mount over NFS by themselves (`--store-dir`: on
/// Grid'5000, a folder under the NFS home that every host already mounts), so nxc runs no server.
/// The tree goes there as one squashfs image, `<tree>.sqfs`: a file keeps the tree's owners and
/// modes whatever the user who writes it (root on a node reads an NFS home as nobody), it is
/// written once and renamed into place beside earlier ones (nodes on an older tree keep theirs),
/// and the nodes read it compressed. Their initrd mounts the folder read-only, then the image
/// through a loop device, as the lower layer of the overlay.
struct StoreFolder: Sendable {
    /// The folder, absolute, on this machine.
    let dir: String
    /// Where the nodes mount it (`nfs://ADDRESS/PATH`), with the server as an IPv4 address (the
    /// initrd resolves no names).
    let url: String
    /// The mount point the folder is on here (its folders from there down must let nobody pass).
    let mountPoint: String
    let tree: NetrootKind.Description

    var imageName: String { tree.tree + ".sqfs" }
    var imagePath: String { dir + "/" + imageName }
    /// The image's SHA-256, written beside it once it is whole.
    var sumPath: String { imagePath + ".sha256" }
    /// `nxc.root=` for the nodes' command lines.
    var rootURL: String { url + "/" + imageName }

    /// A mount of this machine's mount table (/proc/self/mountinfo).
    struct Mount: Equatable {
        var root: String
        var point: String
        var type: String
        var source: String
        var superOptions: [String]
    }

    /// The mounts of a mountinfo text, in its order (`\040`-style escapes undone).
    static func mounts(mountinfo: String) -> [Mount] {
        mountinfo.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ").map(String.init)
            guard let dash = f.firstIndex(of: "-"), dash >= 6, f.count >= dash + 4 else { return nil }
            return Mount(root: unescape(f[3]), point: unescape(f[4]), type: f[dash + 1], source: unescape(f[dash + 2]),
                         superOptions: f[dash + 3].split(separator: ",").map(String.init))
        }
    }

    static func unescape(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var out: [UInt8] = []
        let b = Array(s.utf8)
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "\\"), i + 3 < b.count, let v = UInt8(String(decoding: b[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                out.append(v)
                i += 4
            } else {
                out.append(b[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The mount `path` is on (the last of the longest mount points that hold it) and the rest of
    /// the path below it.
    static func mount(of path: String, in mounts: [Mount]) -> (Mount, String)? {
        var best: (Mount, String)?
        for m in mounts {
            let p = m.point == "/" ? "" : m.point
            guard path == m.point || path.hasPrefix(p + "/") else { continue }
            if let b = best, b.0.point.count > m.point.count { continue }
            best = (m, String(path.dropFirst(p.count)))
        }
        return best
    }

    /// The NFS URL of `path` from the mount table: the server's address (`addr=`), the export and
    /// the rest of the path; or why there is none.
    static func nfsURL(of path: String, mounts: [Mount]) -> Result<String, DeployError> {
        guard let (m, rest) = mount(of: path, in: mounts) else {
            return .failure(.badOption("--store-dir", problem: "\(path) is on no mount of this machine's mount table"))
        }
        guard m.type == "nfs" || m.type == "nfs4" else {
            return .failure(.badOption("--store-dir", problem: "\(path) is on \(m.point) (\(m.type)), not on an NFS mount: the nodes could not "
                                       + "mount it; give --store-url nfs://SERVER/PATH if they reach this folder so"))
        }
        guard let colon = m.source.range(of: ":/") else {
            return .failure(.badOption("--store-dir", problem: "\(m.point) is mounted from '\(FlavourRules.printable(m.source))', not SERVER:/PATH"))
        }
        let server = m.superOptions.first { $0.hasPrefix("addr=") }.map { String($0.dropFirst(5)) } ?? String(m.source[..<colon.lowerBound])
        var export = String(m.source[m.source.index(before: colon.upperBound)...])
        if m.root != "/" { export += m.root }
        return .success("nfs://\(server)" + (export == "/" ? "" : export) + rest)
    }

    /// Checks `nfs://HOST/PATH` for the kernel command line (plain characters, IPv4 or a name
    /// resolved here) and gives it with the server's IPv4 address.
    static func checkedURL(_ url: String, option: String) throws -> String {
        let bad = { (why: String) in DeployError.badOption(option, problem: "'\(FlavourRules.printable(url))': \(why)") }
        guard url.hasPrefix("nfs://") else { throw bad("expected nfs://SERVER/PATH") }
        let rest = url.dropFirst("nfs://".count)
        guard let slash = rest.firstIndex(of: "/"), slash != rest.startIndex else { throw bad("expected nfs://SERVER/PATH") }
        var path = String(rest[slash...])
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+~/")
        guard path.allSatisfy(allowed.contains), !path.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) else {
            throw bad("the path goes on the nodes' kernel command line: letters, digits, . _ - + ~ and / only, no . or .. parts")
        }
        let host = String(rest[..<slash])
        guard let address = PxeStart.ipv4(host) else { throw bad("\(FlavourRules.printable(host)) is neither an IPv4 address nor a name that resolves to one here") }
        return "nfs://\(address)" + (path == "/" ? "" : path)
    }

    /// The folder of `--store-dir` (made if missing) and the nodes' URL for it: `--store-url`, else
    /// from the mount table.
    static func make(dir given: String, url: String?, tree: NetrootKind.Description, mountinfo: String? = nil) throws -> StoreFolder {
        let fm = FileManager.default
        guard given.hasPrefix("/") else { throw DeployError.badOption("--store-dir", problem: "'\(FlavourRules.printable(given))' is not an absolute path") }
        do { try fm.createDirectory(atPath: given, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755]) } catch {
            throw DeployError.file("make the store folder", path: given, reason: "\(error)")
        }
        let dir = URL(fileURLWithPath: given).resolvingSymlinksInPath().path
        // The nodes boot whatever image is there: a folder others may write in could be given another.
        if let mode = (try? fm.attributesOfItem(atPath: dir)[.posixPermissions] as? Int), mode & 0o002 != 0 {
            throw DeployError.badOption("--store-dir", problem: String(format: "%@ (%o): others can write in it, and could give the nodes "
                                                                       + "another system; take it away (chmod o-w) or pick another folder", dir, mode))
        }
        let table = mounts(mountinfo: mountinfo ?? (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? "")
        let raw = try url ?? nfsURL(of: dir, mounts: table).get()
        return StoreFolder(dir: dir, url: try checkedURL(raw, option: url == nil ? "--store-dir" : "--store-url"),
                           mountPoint: mount(of: dir, in: table)?.0.point ?? "/", tree: tree)
    }

    /// Folders from the mount point down to the folder that others cannot pass through, and whether
    /// the folder itself lets them list it: root on a node reads an NFS home as nobody (root_squash).
    func unreachable() -> [String] {
        var out: [String] = []
        var p = dir
        while true {
            if let mode = (try? FileManager.default.attributesOfItem(atPath: p)[.posixPermissions] as? Int), mode & 0o001 == 0 {
                out.append(String(format: "%@ (%o)", p, mode))
            }
            if p == mountPoint || p == "/" { break }
            p = (p as NSString).deletingLastPathComponent
        }
        return out.reversed()
    }

    /// Makes the image (once: a whole one with its SHA-256 beside it is kept) from the build's tree
    /// archive, world-readable, through a temporary file and a rename. Returns its SHA-256.
    func publish(build: String, progress: @Sendable (String) -> Void) throws -> String {
        let fm = FileManager.default
        if let want = (try? String(contentsOfFile: sumPath, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines),
           fm.fileExists(atPath: imagePath), (try? sha256(file: imagePath)) == want {
            progress("store folder: \(imagePath) holds the system already")
            return want
        }
        guard Command.which("tar2sqfs") != nil, Command.which("zstd") != nil else {
            throw DeployError.toolMissing("tar2sqfs", package: "squashfs-tools-ng zstd")
        }
        let t0 = Date()
        let part = "\(dir)/.\(imageName).part-\(getpid())"
        let failed = part + ".zstd-failed"
        defer { try? fm.removeItem(atPath: part); try? fm.removeItem(atPath: failed) }
        // zstd's status is not the pipeline's: it leaves a mark when it fails. Same tar, same bytes:
        // tar2sqfs keeps the archive's times and owners and packs deterministically.
        let script = #"(zstd -q -dc -- "$1" || : > "$3") | tar2sqfs -q -s -f -c zstd -X level=6 -j "$4" "$2" && [ ! -e "$3" ]"#
        let jobs = String(max(1, min(8, ProcessInfo.processInfo.activeProcessorCount)))
        do {
            try Command.run(["sh", "-c", script, "sh", build + "/" + NetrootKind.systemName, part, failed, jobs], timeout: 1800)
            guard chmod(part, 0o644) == 0 else { throw DeployError.systemCall("chmod", errno: errno, context: part) }
            let fd = open(part, O_RDONLY)
            if fd >= 0 { fsync(fd); close(fd) }
            let sum = try sha256(file: part)
            try? fm.removeItem(atPath: sumPath)
            guard rename(part, imagePath) == 0 else { throw DeployError.systemCall("rename", errno: errno, context: imagePath) }
            try writeAtomically(Data((sum + "\n").utf8), to: sumPath)
            let size = (try? fm.attributesOfItem(atPath: imagePath)[.size] as? Int) ?? 0
            progress(String(format: "store folder: wrote the system as %@ (%d MiB, SHA-256 %@…) in %.1f s", imagePath, size >> 20,
                            String(sum.prefix(16)), Date().timeIntervalSince(t0)))
            return sum
        } catch let e as DeployError {
            throw e
        } catch {
            throw DeployError.file("write the system image in", path: dir, reason: "\(error)")
        }
    }
}
