import Foundation
import NXCArchive
import NXCBuild
import NXCComposition
import NXCDeploy
import NXCDeployment
import NXCFlavours
import NXCStore

/// Reading an archive given to `nxc verify` (untrusted): its members streamed to files within
/// limits, its SHA256SUMS and agent, and how two archives' members differ.
extension Export {
    /// Streams the archive's members to files under `work`, checking each before anything is
    /// written: its path (relative, no `..`, no control characters, bounded length, one top folder),
    /// its type (regular files and folders only: no links, devices or hard links), the member count,
    /// and the bytes written so far against `limits.totalBytes` (the header's size first, then the
    /// bytes as they come). Returns the top folder and the files under it.
    static func unpack(archive: String, into work: String, limits: Limits) throws -> (top: String, files: Set<String>) {
        func refuse(_ why: String) -> BuildError { .badArchive(archive, problem: "\(why); refusing it") }
        let stream = try ArchiveStream(path: archive, accepting: .tar)
        var top: String?
        var files = Set<String>()
        var members = 0
        var total: Int64 = 0
        while let e = try stream.next() {
            members += 1
            guard members <= limits.members else { throw refuse("more than \(limits.members) members") }
            let shown = FlavourRules.printable(e.path)
            let parts = try memberPath(e.path, limits: limits, refuse: { refuse("member '\(shown)' \($0)") })
            if top == nil {
                var st = stat()
                guard lstat(work + "/" + parts[0], &st) != 0 else {
                    throw BuildError.badInput("\(work)/\(parts[0])", problem: "exists; verify unpacks into a folder of its own (remove it or give another --workdir)")
                }
                top = parts[0]
            }
            guard parts[0] == top else { throw refuse("members in more than one top folder ('\(top ?? "")', '\(parts[0])')") }
            var dir = work
            for p in parts.dropLast() {
                dir += "/" + p
                // Only files and folders are ever made here, so what is there is a folder or a file.
                if mkdir(dir, 0o755) != 0 && errno != EEXIST { throw BuildError.file("create", path: dir, reason: String(cString: strerror(errno))) }
            }
            let dest = dir + "/" + (parts.last ?? "")
            switch e.kind {
            case .directory where e.hardlinkTarget == nil:
                var st = stat()
                if mkdir(dest, 0o755) != 0 && !(errno == EEXIST && lstat(dest, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR) {
                    throw errno == EEXIST ? refuse("member '\(shown)' is both a file and a folder")
                        : BuildError.file("create", path: dest, reason: String(cString: strerror(errno)))
                }
            case .file where e.hardlinkTarget == nil:
                guard parts.count > 1 else { throw refuse("member '\(shown)' is a file outside the top folder") }
                func tooBig() -> BuildError {
                    .badArchive(archive, problem: "unpacks to more than \(limits.totalBytes) bytes (--max-size) at member '\(shown)'; refusing it")
                }
                if let size = e.size, size < 0 || size > limits.totalBytes - total { throw tooBig() }
                let fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode_t(0o600))
                guard fd >= 0 else {
                    throw errno == EEXIST ? refuse("member '\(shown)' appears twice (or is both a file and a folder)")
                        : BuildError.file("write", path: dest, reason: String(cString: strerror(errno)))
                }
                defer { close(fd) }
                try stream.readData { chunk in
                    guard Int64(chunk.count) <= limits.totalBytes - total else { throw tooBig() }
                    total += Int64(chunk.count)
                    guard let base = chunk.baseAddress else { return }
                    var off = 0
                    while off < chunk.count {
                        let n = write(fd, base + off, chunk.count - off)
                        if n < 0 && errno == EINTR { continue }
                        guard n > 0 else { throw BuildError.file("write", path: dest, reason: String(cString: strerror(errno))) }
                        off += n
                    }
                }
                // Only the execute bit is kept: no set-id, sticky or group/other write bits from elsewhere.
                fchmod(fd, (e.mode & 0o111) != 0 ? 0o755 : 0o644)
                files.insert(parts.dropFirst().joined(separator: "/"))
            default:
                let what: String
                switch e.kind {
                case _ where e.hardlinkTarget != nil: what = "a hard link"
                case .symlink: what = "a symbolic link"
                case .fifo: what = "a FIFO"
                case .characterDevice: what = "a character device"
                case .blockDevice: what = "a block device"
                default: what = "not a regular file"
                }
                throw refuse("member '\(shown)' is \(what); an export holds only files and folders")
            }
        }
        try stream.finish()
        guard let top else { throw BuildError.badArchive(archive, problem: "empty archive") }
        return (top, files)
    }

    /// The components of a member path or of a name in SHA256SUMS: relative, no `..`, no control
    /// characters or invalid UTF-8 (shown as U+FFFD), at most `limits.pathBytes` bytes, each
    /// component at most 255; `.` components are dropped.
    static func memberPath(_ path: String, limits: Limits, refuse: (String) -> BuildError) throws -> [String] {
        guard path.utf8.count <= limits.pathBytes else { throw refuse("has a path longer than \(limits.pathBytes) bytes") }
        guard !path.hasPrefix("/") else { throw refuse("is an absolute path") }
        guard !path.unicodeScalars.contains(where: unsafeInName) else {
            throw refuse("has a control character or invalid UTF-8 in its name")
        }
        let parts = path.split(separator: "/").map(String.init).filter { $0 != "." }
        guard !parts.isEmpty else { throw refuse("has an empty name") }
        guard !parts.contains("..") else { throw refuse("leaves the archive's folder ('..')") }
        guard parts.allSatisfy({ $0.utf8.count <= 255 }) else { throw refuse("has a name component longer than 255 bytes") }
        return parts
    }

    /// C0 and C1 controls, DEL, the replacement character (what invalid UTF-8 decodes to) and
    /// bidirectional controls, which make a name print as another.
    static func unsafeInName(_ u: Unicode.Scalar) -> Bool {
        u.value < 0x20 || (0x7f...0x9f).contains(u.value) || u.value == 0xFFFD
            || (0x202a...0x202e).contains(u.value) || (0x2066...0x2069).contains(u.value) || u.value == 0x200e || u.value == 0x200f
    }

    /// A small text file of the archive, refused above `limit` bytes or when it is not UTF-8.
    static func readText(_ path: String, limit: Int64) throws -> String {
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { throw BuildError.badArchive(path, problem: "not a regular file") }
        guard Int64(st.st_size) <= limit else { throw BuildError.badArchive(path, problem: "larger than \(limit) bytes") }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw BuildError.badArchive(path, problem: "unreadable or not UTF-8")
        }
        return text
    }

    /// SHA256SUMS: `HEX  NAME` lines (sha256sum's format, `*` for binary mode allowed), each name
    /// checked like a member path, none twice.
    static func readSums(root: String, top: String, archive: String, present: Set<String>, limits: Limits) throws -> [(file: String, sha: String)] {
        guard present.contains("SHA256SUMS") else { throw BuildError.badArchive(archive, problem: "no SHA256SUMS in \(top)/; not an nxc export") }
        let text: String
        do { text = try readText(root + "/SHA256SUMS", limit: limits.textBytes) }
        catch { throw BuildError.badArchive(archive, problem: "\(top)/SHA256SUMS: \(error)") }
        var sums: [(file: String, sha: String)] = []
        var seen = Set<String>()
        for (i, line) in text.split(separator: "\n").enumerated() {
            let where_ = "\(top)/SHA256SUMS:\(i + 1)"
            let parts = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            let hex = parts.first.map(String.init) ?? ""
            guard parts.count == 2, hex.count == 64, hex.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
                throw BuildError.badArchive(where_, problem: "expected 'SHA256  FILE' (64 lowercase hex digits, two spaces, a name)")
            }
            var name = Substring(parts[1])
            if name.first == " " || name.first == "*" { name = name.dropFirst() }
            let file = try memberPath(String(name), limits: limits, refuse: {
                BuildError.badArchive(where_, problem: "'\(FlavourRules.printable(String(name)))' \($0)")
            }).joined(separator: "/")
            guard seen.insert(file).inserted else { throw BuildError.badArchive(where_, problem: "\(file) is listed twice") }
            sums.append((file, hex))
        }
        return sums
    }

    /// The agent binary an export carries, when SHA256SUMS lists it: a regular file of at most
    /// `agentMaxBytes`. Nil for exports made before nxc recorded it.
    static func exportedAgent(root: String, archive: String, listed: Set<String>, present: Set<String>) throws -> String? {
        guard listed.contains(agentMember), present.contains(agentMember) else { return nil }
        let path = root + "/" + agentMember
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw BuildError.badArchive(archive, problem: "\(agentMember) is not a regular file; refusing it")
        }
        guard Int64(st.st_size) <= agentMaxBytes else {
            throw BuildError.badArchive(archive, problem: "\(agentMember) is \(st.st_size) bytes, more than an agent (\(agentMaxBytes)); refusing it")
        }
        return path
    }

    /// One archive member as compared: its data by digest, so that neither archive is ever whole in memory.
    struct MemberSummary: Equatable {
        var kind: ArchiveEntry.Kind
        var mode: UInt32
        var uid: Int64
        var gid: Int64
        var mtime: Int64
        var linkTarget: String?
        var xattrs: [String: [UInt8]]
        var digest: [UInt8]
    }

    /// For two archives (tar, cpio; gzip, zstd) that differ: which members differ, at most 10.
    /// The exported one is from elsewhere: read as a stream, its expansion bounded by `limits`.
    static func archiveDifferences(exported: String, rebuilt: String, limits: Limits = Limits()) -> [String] {
        guard let ma = try? memberSummaries(exported, limits: limits), let mb = try? memberSummaries(rebuilt, limits: limits),
              ma.count > 1 || mb.count > 1 else { return [] }
        var out: [String] = []
        for p in Set(ma.keys).union(mb.keys).sorted() {
            switch (ma[p], mb[p]) {
            case (nil, _?): out.append("\(FlavourRules.printable(p)) only in the rebuild")
            case (_?, nil): out.append("\(FlavourRules.printable(p)) only in the export")
            case (let x?, let y?) where x != y:
                var what: [String] = []
                if x.digest != y.digest || x.kind != y.kind { what.append("content") }
                if x.mode != y.mode { what.append("mode") }
                if x.uid != y.uid || x.gid != y.gid { what.append("owner") }
                if x.mtime != y.mtime { what.append("time") }
                if x.linkTarget != y.linkTarget { what.append("link") }
                if x.xattrs != y.xattrs { what.append("xattrs") }
                out.append("\(FlavourRules.printable(p)) (\(what.joined(separator: ", ")))")
            default: break
            }
        }
        if out.count > 10 { out = Array(out.prefix(10)) + ["… \(out.count - 10) more members"] }
        return out
    }

    static func memberSummaries(_ path: String, limits: Limits) throws -> [String: MemberSummary] {
        var out: [String: MemberSummary] = [:]
        var count = 0
        try ArchiveReader.forEach(path: path, accepting: .tarOrCpio, maxExpandedBytes: limits.totalBytes) { e, s in
            count += 1
            // An initrd holds tens of thousands of members; far more is not an nxc artefact.
            guard count <= 10 * limits.members else { throw BuildError.badArchive(path, problem: "more than \(10 * limits.members) members") }
            let h = SHA256Digest()
            if e.kind == .file { try s.readData { h.update($0) } }
            let summary = MemberSummary(kind: e.kind, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime,
                                        linkTarget: e.linkTarget, xattrs: e.xattrs, digest: h.finalize())
            if out[e.path] == nil { out[e.path] = summary }
        }
        return out
    }

    static func makeTemporaryDirectory(prefix: String) throws -> String {
        var template = Array((NSTemporaryDirectory() + "/\(prefix)-XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ b in b.baseAddress.flatMap { mkdtemp($0) } }) else {
            throw BuildError.file("create", path: "a temporary folder in \(NSTemporaryDirectory())", reason: String(cString: strerror(errno)))
        }
        return String(cString: made)
    }
}
