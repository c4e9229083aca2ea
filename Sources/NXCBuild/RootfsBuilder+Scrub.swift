import Foundation
import NXCArchive
import NXCComposition
import NXCNames
import NXCStore

/// What a built tree must lose before it is stored (host keys, build records), and its services checked.
extension RootfsBuilder {
    /// Removes what must never be in an artefact (private host keys) and what differs between builds.
    /// `ownership`: the record of a tree a normal user unpacked, kept in step with what changes here.
    /// A file that cannot be removed is an error naming it (a secret left in an image is not a detail).
    static func scrub(_ root: String, ownership: inout TreeOwnership?) throws {
        let fm = FileManager.default
        if let names = try? fm.contentsOfDirectory(atPath: root + "/etc/ssh") {
            for n in names.sorted() where n.hasPrefix("ssh_host_") {
                try remove("/etc/ssh/" + n, in: root, ownership: &ownership,
                           doing: "removing an SSH host key the build made (each node makes its own at boot)")
            }
        }
        // Secrets packages generate at install time are not shipped (no secret in an artefact):
        // munge's key comes from the composition at run time (templates/slurm).
        try remove("/etc/munge/munge.key", in: root, ownership: &ownership, doing: "removing the munge key the build made")
        // systemd creates a fresh machine id on each node at boot. Mode set here, not by the umask: root
        // and user builds give the same file.
        let machineID = root + "/etc/machine-id"
        guard fm.createFile(atPath: machineID, contents: Data()), chmod(machineID, 0o644) == 0 else {
            throw BuildFileError("emptying the image's machine id", path: machineID,
                                 error: NSError(domain: NSPOSIXErrorDomain, code: Int(errno)))
        }
        ownership?.entries["/etc/machine-id"] = TreeOwnership.Entry(uid: 0, gid: 0, mode: 0o644)
        try remove("/var/lib/dbus/machine-id", in: root, ownership: &ownership, doing: "removing the build's D-Bus machine id")
        // apt's download folders: _apt's when mmdebstrap's apt could drop privileges (unshare mode, a
        // store _apt can read), root's when it could not (root's own store). Root's in every image;
        // apt hands them to _apt on the node whenever it runs.
        for dir in ["/var/cache/apt/archives/partial", "/var/lib/apt/lists/partial"] {
            var st = stat()
            guard lstat(root + dir, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else { continue }
            if ownership != nil {
                ownership?.entries[dir] = TreeOwnership.Entry(uid: 0, gid: 0, mode: 0o700)
            } else if chown(root + dir, 0, 0) != 0 || chmod(root + dir, 0o700) != 0 {
                throw BuildFileError("giving apt's download folder to root", path: root + dir,
                                     error: NSError(domain: NSPOSIXErrorDomain, code: Int(errno)))
            }
        }
        // Records of the build itself (dates, inode-keyed caches, backups of the previous state).
        let records = "removing a record of the build (they differ between builds of the same inputs)"
        try removeFiles("/var/log", in: root, ownership: &ownership, doing: records) { $0.hasSuffix(".log") || $0.hasSuffix(".log.xz") }
        try remove("/var/cache/ldconfig/aux-cache", in: root, ownership: &ownership, doing: records)
        for dir in ["/var/lib/dpkg", "/var/cache/debconf"] {
            try removeFiles(dir, in: root, recursive: false, ownership: &ownership, doing: records) { $0.hasSuffix("-old") }
        }
        for dir in ["/var/cache/apt/archives/partial", "/var/cache/apt"] {
            try removeFiles(dir, in: root, recursive: false, ownership: &ownership, doing: "removing apt's caches from the image") {
                $0.hasSuffix(".bin") || $0.hasSuffix(".deb")
            }
        }
    }

    /// Removes `rel` (a path inside the tree at `root`) if it is there, and its entry from the record.
    static func remove(_ rel: String, in root: String, ownership: inout TreeOwnership?, doing: String) throws {
        let path = root + rel
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        do { try FileManager.default.removeItem(atPath: path) }
        catch { throw BuildFileError(doing, path: path, error: error) }
        ownership?.entries[rel] = nil
    }

    /// Removes the files under `dir` (inside the tree) whose names `match`; symbolic links to folders are not followed.
    static func removeFiles(_ dir: String, in root: String, recursive: Bool = true, ownership: inout TreeOwnership?,
                            doing: String, where match: (String) -> Bool) throws {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: root + dir) else { return }
        for n in names.sorted() {
            let rel = dir + "/" + n
            var st = stat()
            guard lstat(root + rel, &st) == 0 else { continue }
            if st.st_mode & S_IFMT == S_IFDIR {
                if recursive { try removeFiles(rel, in: root, ownership: &ownership, doing: doing, where: match) }
            } else if match(n) {
                try remove(rel, in: root, ownership: &ownership, doing: doing)
            }
        }
    }

    /// Checks that every role's services exist as unit files in the image.
    public static func checkServices(of composition: Composition, root: String) throws {
        let dirs = ["/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"]
        for role in composition.roles {
            for s in role.services {
                // The agent's rule (NXCNames): `php8.2-fpm` is `php8.2-fpm.service`, not a unit of type "2-fpm".
                guard let unit = UnitName.normalize(s.value) else {
                    throw BuildError.badEntry(s, problem: UnitName.problem(s.value) ?? "is not a systemd unit name")
                }
                // A unit the role brings itself as one of its files counts too.
                var found = dirs.contains { d in FileManager.default.fileExists(atPath: root + d + "/" + unit)
                    || role.files.contains { $0.path == d + "/" + unit } }
                // Template instances (getty@tty1.service) come from their template unit.
                if !found, let template = UnitName.template(of: unit) {
                    found = dirs.contains { d in FileManager.default.fileExists(atPath: root + d + "/" + template)
                        || role.files.contains { $0.path == d + "/" + template } }
                }
                if !found { throw BuildError.missingService(Located(unit, at: s.location, key: s.key), role: role.name) }
            }
        }
    }
}
