import Glibc

// nxc-agent: the agent inside every nxc image. See Boot.swift (`boot`) and
// Generator.swift (run as /usr/lib/systemd/system-generators/nxc-generator).

let version = "0.1.0"

let usage = """
    usage: nxc-agent boot [--host NAME] [--deployment FILE] [--link-timeout SECONDS] [--fetch-timeout SECONDS]
           nxc-agent whoami [--host NAME] [--deployment FILE]   (never fetches nxc.deployment_url)
           nxc-agent generator NORMAL_DIR EARLY_DIR LATE_DIR   (as systemd runs nxc-generator)
           nxc-agent bundle DIR   (this node's kernel and retained initrd, for kexec --reuse)
           nxc-agent secret install   (the deployment's secret, 32 bytes on standard input, from nxc start)
           nxc-agent update   (a newer deployment document on standard input, from nxc start: /etc/hosts and /etc/nxc)
           nxc-agent secret derive PURPOSE [--wait SECONDS]   (a key for PURPOSE: HMAC-SHA256(secret, PURPOSE), hex)
           nxc-agent sha256 < FILE   (SHA-256 in hex, as the agent checks nxc.deployment_sha256)
           nxc-agent --version

    """

func main() -> Int32 {
    let arguments = CommandLine.arguments
    let root = SystemRoot.fromEnvironment()
    let invokedAs = arguments.first.map { $0.split(separator: "/").last.map(String.init) ?? $0 } ?? ""
    if invokedAs == Generator.program {
        return Generator.run(arguments: Array(arguments.dropFirst()), root: root)
    }
    guard arguments.count >= 2 else {
        writeAll(2, usage)
        return 64
    }
    let rest = Array(arguments.dropFirst(2))
    switch arguments[1] {
    case "--version", "version":
        writeAll(1, "nxc-agent \(version)\n")
        return 0
    case "--help", "-h", "help":
        writeAll(1, usage)
        return 0
    case "generator":
        return Generator.run(arguments: rest, root: root)
    case "boot":
        do {
            return Boot(options: try BootOptions.parse(rest), root: root).run()
        } catch {
            writeAll(2, "nxc-agent: \(error)\n\(usage)")
            return 64
        }
    case "whoami":
        return whoami(rest, root: root)
    case "secret":
        return SecretCommand(root: root, log: Logger(program: "nxc-agent", sink: .standardOutput)).run(rest)
    case "update":
        return UpdateCommand(root: root, log: Logger(program: "nxc-agent", sink: .standardOutput)).run(rest)
    case "sha256":
        return sha256Command(rest)
    case "bundle":
        return BundleCommand(root: root, log: Logger(program: "nxc-agent", sink: .standardOutput)).run(rest)
    default:
        writeAll(2, "nxc-agent: unknown command \"\(arguments[1])\"\n\(usage)")
        return 64
    }
}

/// Prints `NAME ROLE`, found the way `boot` finds them.
func whoami(_ arguments: [String], root: SystemRoot) -> Int32 {
    let options: BootOptions
    do {
        options = try BootOptions.parse(arguments)
    } catch {
        writeAll(2, "nxc-agent: \(error)\n\(usage)")
        return 64
    }
    let log = Logger(program: "nxc-agent", sink: .standardOutput)
    let context = BootContext(root: root, log: log)
    guard let (name, _) = context.nodeName(option: options.host) else {
        log.error("\(AgentError.noNodeName)")
        return 1
    }
    do {
        let node = try context.deployment(option: options.deployment).node(name)
        writeAll(1, "\(name) \(node.role)\n")
        return 0
    } catch {
        log.error("\(error)")
        return 1
    }
}

exit(main())
