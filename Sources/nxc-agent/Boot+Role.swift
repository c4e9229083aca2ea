import Glibc

/// The role: its files, SSH host keys, its services.
extension Boot {
    /// Copies the role's files from the image's role folder into place,
    /// keeping their modes; sets `changed` if any file changed. Returns the
    /// failures (one per file that could not be installed).
    func installRoleFiles(_ composition: CompositionRoles, role: String, changed: inout Bool) -> [String] {
        let paths = composition.files[role] ?? []
        guard !paths.isEmpty else { return [] }
        var failures: [String] = []
        var count = 0
        for path in paths {
            do {
                let source = root.path(CompositionRoles.rolesDirectory + "/" + role + path)
                var info = stat()
                guard stat(source, &info) == 0 else {
                    throw AgentError.io(path: source, operation: "stat", errno: errno)
                }
                let bytes = try Files.readBytes(source, limit: 256 << 20)
                let destination = root.path(path)
                if let slash = destination.lastIndex(of: "/"), slash != destination.startIndex {
                    try Files.makeDirectories(String(destination[..<slash]))
                }
                if try Files.write(destination, bytes, mode: info.st_mode & 0o7777) != .unchanged { count += 1 }
            } catch {
                log.error("role file \(path): \(error)")
                failures.append("role file \(path): \(error)")
            }
        }
        log.info("role files: \(paths.count - failures.count) of \(paths.count) in place, \(count) changed")
        changed = changed || count > 0
        return failures
    }

    // 7. Host keys are made on the node: an artefact never holds a private key.
    func makeHostKeys() throws {
        if Files.exists(root.path("/etc/ssh/ssh_host_ed25519_key")) {
            log.info("SSH host keys are present")
            return
        }
        if !system.dryRun && (try? Spawn.resolve("ssh-keygen")) == nil {
            // Images without OpenSSH (containers reached with `docker exec`): nothing uses host keys.
            log.info("SSH host keys: none made (no ssh-keygen: this image has no SSH server)")
            return
        }
        // Ed25519 and ECDSA only: an RSA key takes seconds to generate on an emulated CPU.
        for (type, file) in [("ed25519", "/etc/ssh/ssh_host_ed25519_key"), ("ecdsa", "/etc/ssh/ssh_host_ecdsa_key")] {
            try system.run(["ssh-keygen", "-q", "-t", type, "-N", "", "-C", "", "-f", file], timeout: 60)
        }
    }

    // 8.
    /// Starts the role's units. When `restart` (role files changed), a unit
    /// that is already active is restarted so that it reads them: on a node
    /// contextualised again, or a unit the generator could not order after
    /// this agent. At boot the role's services wait for the agent (the
    /// generator orders them after it), so they are started, not restarted.
    func startServices(_ composition: CompositionRoles, role: String, restart: Bool, reload: Bool = false) -> [String] {
        guard let units = composition.services[role] else {
            let error = AgentError.invalid(origin: root.path(CompositionRoles.path), key: "roles",
                                           message: "has no role \"\(role)\"")
            log.error("services: \(error)")
            return ["services: \(error)"]
        }
        guard !units.isEmpty else {
            log.info("role \(role) has no services")
            return []
        }
        var failures: [String] = []
        // The generator masks every role's services when it cannot tell which
        // node this is (the name came from --host, say). Now that /etc/nxc
        // holds the answer, a reload runs it again and lifts those masks.
        let early = root.path(Boot.earlyGeneratorDirectory)
        let masked = units.filter { Files.linkTarget(early + "/" + $0) == "/dev/null" }
        if !masked.isEmpty || reload {
            log.info(masked.isEmpty ? "the role brings unit files: reloading systemd"
                : "the generator masked \(masked.joined(separator: " ")) (it did not know this node); reloading systemd to run it again")
            do {
                try system.run(["systemctl", "daemon-reload"], timeout: 60)
            } catch {
                log.error("\(error)")
                failures.append("\(error)")
            }
        }
        if restart { log.info("role files changed: restarting the role's services that already run, so they read them") }
        for unit in units {
            let running = restart && system.isActive(unit)
            do {
                try system.run(["systemctl", running ? "restart" : "start", "--no-block", unit], timeout: 30)
            } catch {
                log.error("\(error)")
                failures.append("\(error)")
            }
        }
        return failures
    }

}
