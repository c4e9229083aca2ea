import Foundation
import NXCBuild

/// The key pair nxc uses to reach nodes as root: `-i KEY`, else the user's ed25519 or RSA key,
/// else one generated once in the project's `.nxc/`.
public struct SSHIdentity: Sendable, Codable, Equatable {
    /// Private key file given to `ssh -i`.
    public var privateKey: String
    public var publicKey: String

    public static func resolve(explicit: String?, project: Project) throws -> SSHIdentity {
        let fm = FileManager.default
        if let e = explicit {
            let priv = e.hasSuffix(".pub") ? String(e.dropLast(4)) : e
            let pub = priv + ".pub"
            guard let text = try? String(contentsOfFile: pub, encoding: .utf8) else {
                throw DeployError.badOption("-i \(e)", problem: "cannot read the public key \(pub)")
            }
            return SSHIdentity(privateKey: priv, publicKey: text.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let home = ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()
        for name in ["id_ed25519", "id_rsa"] {
            let priv = "\(home)/.ssh/\(name)"
            if fm.fileExists(atPath: priv), let text = try? String(contentsOfFile: priv + ".pub", encoding: .utf8) {
                return SSHIdentity(privateKey: priv, publicKey: text.trimmingCharacters(in: .whitespacesAndNewlines))
            }
        }
        let priv = project.stateDirectory + "/id_ed25519"
        if !fm.fileExists(atPath: priv) {
            try fm.createDirectory(atPath: project.stateDirectory, withIntermediateDirectories: true)
            try Command.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "nxc@\(ProcessInfo.processInfo.hostName)", "-f", priv],
                            timeout: 30)
        }
        guard let text = try? String(contentsOfFile: priv + ".pub", encoding: .utf8) else {
            throw DeployError.file("read", path: priv + ".pub", reason: "ssh-keygen made no public key")
        }
        return SSHIdentity(privateKey: priv, publicKey: text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
