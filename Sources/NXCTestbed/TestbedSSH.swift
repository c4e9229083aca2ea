import Foundation
import NXCDeployment
import NXCBuild

/// SSH to the reserved hosts of one start: to the stock system first (its user, `--ssh-option`s,
/// one ControlMaster per host), then to the node it became (root, nxc's key, the node's own host
/// key). And the SSH that `exec`, `connect` and `status` use on the nodes afterwards.
public struct TestbedSSH: Sendable {
    public var identity: SSHIdentity
    public var options: Options
    /// What the user said about reaching the stock systems (`nxc start -l`, `--ssh-option`, `--reuse`).
    public struct Options: Sendable {
        public var sshUser: String?
        public var sshOptions: [String]
        /// The hosts already run nodes (`--reuse`): reach them as root with nxc's key.
        public var reuse: Bool
        public init(sshUser: String?, sshOptions: [String], reuse: Bool) {
            self.sshUser = sshUser
            self.sshOptions = sshOptions
            self.reuse = reuse
        }
    }
    /// Host keys of the stock systems, and of the nodes (the deployment's known_hosts).
    public var preKnownHosts: String
    public var postKnownHosts: String
    /// Short folder for SSH control sockets: a unix socket path holds at most 107 bytes.
    public var controlDir: String

    public init(identity: SSHIdentity, options: Options, preKnownHosts: String, postKnownHosts: String, controlDir: String) {
        self.identity = identity
        self.options = options
        self.preKnownHosts = preKnownHosts
        self.postKnownHosts = postKnownHosts
        self.controlDir = controlDir
    }

    /// `/tmp/nxc-ssh-UID`, private to this user.
    public static func controlDirectory() throws -> String {
        let dir = "/tmp/nxc-ssh-\(geteuid())"
        if mkdir(dir, 0o700) != 0 && errno != EEXIST {
            throw DeployError.file("create", path: dir, reason: String(cString: strerror(errno)))
        }
        var st = stat()
        guard lstat(dir, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR, st.st_uid == geteuid(), st.st_mode & 0o077 == 0 else {
            throw DeployError.badInput(dir, problem: "not a private folder of this user (another user may have made it); remove it")
        }
        return dir
    }

    /// SSH argv to a stock host before kexec (its user, ControlMaster), or to a node after it.
    /// `probing`: while waiting for a node, the old system may still answer for a moment; its key
    /// must not be recorded, so keys are only learnt once the node has proved who it is.
    public func argv(_ host: TestbedHost, afterKexec: Bool, command: [String], master: Bool = true, probing: Bool = false) -> [String] {
        var a = ["ssh", "-i", identity.privateKey, "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                 "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3", "-o", "LogLevel=ERROR"]
        if probing {
            a += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
        } else {
            a += ["-o", "StrictHostKeyChecking=accept-new",
                  "-o", "UserKnownHostsFile=\(afterKexec || options.reuse ? postKnownHosts : preKnownHosts)"]
        }
        if master && !afterKexec {
            a += ["-o", "ControlMaster=auto", "-o", "ControlPath=\(controlDir)/%C", "-o", "ControlPersist=120"]
        } else {
            a += ["-o", "ControlMaster=no", "-o", "ControlPath=none"]
        }
        if !afterKexec { for o in options.sshOptions { a += ["-o", o] } }
        if let p = host.port { a += ["-p", String(p)] }
        let user = afterKexec || options.reuse ? "root" : (host.user ?? options.sshUser)
        if let user { a += ["-l", user] }
        // `--` before the host: neither the host nor the command can be read as an option.
        a += ["--", host.name, ShellQuote.join(command)]
        return a
    }

    public func closeMasters(_ hosts: [TestbedHost]) {
        for h in hosts { _ = try? Command.status(closeMasterArgv(h), timeout: 10) }
    }

    public func closeMasterArgv(_ h: TestbedHost) -> [String] {
        var a = ["ssh", "-o", "ControlPath=\(controlDir)/%C", "-O", "exit"]
        if let p = h.port { a += ["-p", String(p)] }
        if let u = h.user ?? options.sshUser, !options.reuse { a += ["-l", u] }
        if options.reuse { a += ["-l", "root"] }
        return a + ["--", h.name]
    }

    /// `nxc exec`/`connect` on a node of a testbed deployment: SSH as root to its endpoint.
    public static func remoteCommand(node: String, deployment: Deployment, state: RuntimeState, command: [String], interactive: Bool) -> [String] {
        guard let ep = deployment.nodes[node]?.ssh else { return ["false"] }
        return SSH.argv(endpoint: ep, identity: state.identity, knownHosts: state.knownHosts, command: command, interactive: interactive)
    }

    /// `nxc status` of such a node: running when it answers SSH as itself.
    public static func nodeState(node: String, deployment: Deployment, state: RuntimeState) -> String {
        guard let ep = deployment.nodes[node]?.ssh else { return "unknown" }
        let argv = SSH.argv(endpoint: ep, identity: state.identity, knownHosts: state.knownHosts,
                            command: ["cat", "/etc/nxc/hostname"], interactive: false)
        guard let (st, out) = try? Command.status(argv, timeout: 15) else { return "unreachable" }
        return st == 0 && out.trimmingCharacters(in: .whitespacesAndNewlines) == node ? "running" : "unreachable"
    }
}
