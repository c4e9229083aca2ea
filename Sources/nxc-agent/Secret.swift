import Glibc

/// `nxc-agent secret install|derive` and `nxc-agent sha256`.
///
/// The deployment's secret is 32 random bytes that nxc draws at each `nxc start` and sends to every
/// node after the node answers, over SSH with nxc's key or `docker exec -i` (standard input, never
/// an argument): `secret install` keeps it in /run/nxc/secret, root's only (0600), in memory (/run is
/// a tmpfs, so a reboot forgets it). It is in no artefact, no deployment document and no kernel
/// command line. Roles never use it directly: `secret derive PURPOSE` prints
/// HMAC-SHA256(secret, PURPOSE) in hex, one key per purpose (munge's key is `derive munge`), the
/// same on every node of the deployment and new at each start.
struct SecretCommand {
    static let path = "/run/nxc/secret"
    static let length = 32
    /// Seconds `install` waits for its standard input to end.
    static let inputTimeout = 30.0

    let root: SystemRoot
    let log: Logger

    static let usage = """
        usage: nxc-agent secret install                      (32 bytes on standard input -> \(path), root 0600)
               nxc-agent secret derive PURPOSE [--wait SECONDS]   (HMAC-SHA256(secret, PURPOSE), hex)

        """

    func run(_ arguments: [String]) -> Int32 {
        guard let sub = arguments.first else {
            writeAll(2, Self.usage)
            return 64
        }
        do {
            switch sub {
            case "install":
                guard arguments.count == 1 else { throw AgentError.usage("secret install takes no argument") }
                try install()
                return 0
            case "derive":
                let (purpose, wait) = try Self.parseDerive(Array(arguments.dropFirst()))
                let key = try derive(purpose, wait: wait)
                writeAll(1, SHA256.hex(key) + "\n")
                return 0
            default:
                throw AgentError.usage("unknown secret command \"\(sub)\"")
            }
        } catch let error as AgentError {
            if case .usage = error {
                writeAll(2, "nxc-agent: \(error)\n\(Self.usage)")
                return 64
            }
            log.error("\(error)")
            return 1
        } catch {
            log.error("\(error)")
            return 1
        }
    }

    static func parseDerive(_ arguments: [String]) throws -> (String, Int) {
        var purpose: String?
        var wait = 0
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--wait" || argument.hasPrefix("--wait=") {
                let text: String
                if argument == "--wait" {
                    index += 1
                    guard index < arguments.count else { throw AgentError.usage("--wait needs a value") }
                    text = arguments[index]
                } else {
                    text = String(argument.dropFirst(7))
                }
                guard let seconds = Int(text), seconds >= 0, seconds <= 3600 else {
                    throw AgentError.usage("--wait takes seconds between 0 and 3600, not \"\(text)\"")
                }
                wait = seconds
            } else if purpose == nil, !argument.hasPrefix("-") {
                purpose = argument
            } else {
                throw AgentError.usage("unknown argument \"\(argument)\"")
            }
            index += 1
        }
        guard let purpose else { throw AgentError.usage("secret derive needs a PURPOSE (e.g. munge)") }
        guard isPurpose(purpose) else {
            throw AgentError.usage("PURPOSE \"\(purpose)\" must be 1 to 64 of a-z, 0-9, '.', '_', '-'")
        }
        return (purpose, wait)
    }

    static func isPurpose(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 64 && text.utf8.allSatisfy { b in
            (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9"))
                || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "-")
        }
    }

    /// Reads exactly `length` bytes from standard input and keeps them; a new secret in place of
    /// another also restarts the role's running services, which derived their keys from the old one.
    func install() throws {
        let bytes = try Self.readInput(limit: 4096, timeout: Self.inputTimeout)
        guard bytes.count == Self.length else {
            throw SecretError("standard input", "the secret must be \(Self.length) bytes, not \(bytes.count)")
        }
        let file = root.path(Self.path)
        try Files.makeDirectories(root.path("/run/nxc"))
        let previous = try Files.readIfPresent(file, limit: 4096)
        // Created 0600 from the start (Files.replace opens the temporary file with this mode).
        try Files.write(file, bytes, mode: 0o600)
        log.info("\(Self.path): the deployment's secret (\(Self.length) bytes, root only)")
        guard let previous, previous != bytes else { return }
        restartRoleServices()
    }

    /// Units already running derived keys from the old secret; `try-restart` leaves stopped ones alone.
    private func restartRoleServices() {
        let context = BootContext(root: root, log: log)
        guard let roleBytes = try? Files.readIfPresent(root.path("/etc/nxc/role"), limit: 4096),
              let composition = try? context.composition() else { return }
        let role = String(decoding: roleBytes, as: UTF8.self).trimmed()
        guard let units = composition.services[role], !units.isEmpty else { return }
        log.info("a new secret replaced the previous one: restarting role \(role)'s running services")
        let system = SystemActions(dryRun: root.isTest, log: log)
        do {
            try system.run(["systemctl", "try-restart", "--no-block"] + units, timeout: 30)
        } catch {
            log.error("\(error)")
        }
    }

    /// HMAC-SHA256(secret, purpose). Waits up to `wait` seconds for the secret to arrive (a unit
    /// started at boot runs before nxc has sent it).
    func derive(_ purpose: String, wait: Int) throws -> [UInt8] {
        let file = root.path(Self.path)
        let deadline = Clock.now() + Double(wait)
        while true {
            if let secret = try readSecret(file) {
                return SHA256.hmac(key: secret, message: Array(purpose.utf8))
            }
            guard Clock.now() < deadline else {
                throw SecretError(file, wait == 0
                    ? "is not there: nxc start sends it once the node answers (--wait SECONDS waits for it)"
                    : "is still not there after \(wait) s: nxc start sends it once the node answers")
            }
            usleep(200_000)
        }
    }

    /// The secret, or nil if it is not there yet. One that others could have read or replaced is refused.
    private func readSecret(_ file: String) throws -> [UInt8]? {
        var info = stat()
        guard lstat(file, &info) == 0 else {
            if errno == ENOENT { return nil }
            throw AgentError.io(path: file, operation: "stat", errno: errno)
        }
        guard (info.st_mode & S_IFMT) == S_IFREG, info.st_uid == geteuid(), info.st_mode & 0o077 == 0 else {
            throw SecretError(file, "must be a regular file of this user with mode 0600; refusing it")
        }
        let bytes = try Files.readBytes(file, limit: 4096)
        guard bytes.count == Self.length else {
            throw SecretError(file, "holds \(bytes.count) bytes, not \(Self.length)")
        }
        return bytes
    }

    /// Standard input until its end: at most `limit` bytes, within `timeout` seconds.
    static func readInput(limit: Int, timeout: Double) throws -> [UInt8] {
        let deadline = Clock.now() + timeout
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let left = deadline - Clock.now()
            guard left > 0 else {
                throw SecretError("standard input", "did not end within \(Int(timeout)) s")
            }
            var entry = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, Int32(left * 1000) + 1)
            if ready < 0 && errno != EINTR { throw AgentError.io(path: "standard input", operation: "poll", errno: errno) }
            if ready <= 0 { continue }
            let count = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw AgentError.io(path: "standard input", operation: "read", errno: errno)
            }
            if count == 0 { return data }
            data += buffer[0..<count]
            if data.count > limit {
                throw SecretError("standard input", "is longer than \(limit) bytes")
            }
        }
    }
}

/// `nxc-agent sha256`: the SHA-256 of standard input in hex, as sha256sum prints it (without the name);
/// the same code checks a fetched deployment against nxc.deployment_sha256.
func sha256Command(_ arguments: [String]) -> Int32 {
    guard arguments.isEmpty else {
        writeAll(2, "usage: nxc-agent sha256 < FILE\n")
        return 64
    }
    var hasher = SHA256()
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EINTR { continue }
            writeAll(2, "nxc-agent: read standard input: \(errorString(errno))\n")
            return 1
        }
        if count == 0 { break }
        hasher.update(buffer[0..<count])
    }
    writeAll(1, SHA256.hex(hasher.finish()) + "\n")
    return 0
}

/// A secret command's failure: what (a path, standard input) and why.
struct SecretError: Error, CustomStringConvertible {
    let description: String
    init(_ what: String, _ why: String) { description = "\(what): \(why)" }
}
