/// What this node is told about itself at boot: the kernel command line,
/// its own environment, the environment of PID 1 (container engines give
/// their variables to PID 1, which systemd does not pass on to services),
/// command-line options, and what an earlier boot saved under /etc/nxc.
struct BootContext {
    let root: SystemRoot
    let log: Logger
    /// `key=value` words of /proc/cmdline; the last of a repeated key wins.
    let kernelParameters: [String: String]
    /// The environment of PID 1, from /proc/1/environ.
    let initEnvironment: [String: String]

    init(root: SystemRoot, log: Logger) {
        self.root = root
        self.log = log
        let cmdline = (try? Files.readBytes(root.path("/proc/cmdline"), limit: 1 << 20)) ?? []
        kernelParameters = BootContext.parseCommandLine(String(decoding: cmdline, as: UTF8.self))
        let environ = (try? Files.readBytes(root.path("/proc/1/environ"), limit: 1 << 20)) ?? []
        var variables: [String: String] = [:]
        for entry in environ.split(separator: 0) {
            let text = String(decoding: entry, as: UTF8.self)
            if let equals = text.firstIndex(of: "=") {
                variables[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
        }
        initEnvironment = variables
    }

    /// Splits a kernel command line the way the kernel does: on blanks,
    /// except inside double quotes, which are removed.
    static func parseCommandLine(_ text: String) -> [String: String] {
        var words: [String] = []
        var word = ""
        var quoted = false
        var inWord = false
        for character in text {
            if character == "\"" {
                quoted.toggle()
                inWord = true
            } else if !quoted && (character == " " || character == "\t" || character == "\n") {
                if inWord { words.append(word) }
                word = ""
                inWord = false
            } else {
                word.append(character)
                inWord = true
            }
        }
        if inWord { words.append(word) }
        var parameters: [String: String] = [:]
        for word in words {
            if let equals = word.firstIndex(of: "=") {
                parameters[String(word[..<equals])] = String(word[word.index(after: equals)...])
            } else {
                parameters[word] = ""
            }
        }
        return parameters
    }

    /// A non-empty value, or nil.
    private static func given(_ value: String?) -> String? {
        guard let value, !value.trimmed().isEmpty else { return nil }
        return value.trimmed()
    }

    // MARK: Who am I

    /// This node's name and where it was found. Order: `nxc.host=` on the
    /// kernel command line, `NXC_HOST` in this process's environment, then in
    /// PID 1's, then `--host`, then /etc/nxc/hostname saved by an earlier
    /// boot (a disk image rebooted without the deployer).
    func nodeName(option: String?) -> (name: String, source: String)? {
        let candidates: [(String?, String)] = [
            (kernelParameters["nxc.host"], "kernel command line (nxc.host)"),
            (environmentVariable("NXC_HOST"), "environment (NXC_HOST)"),
            (initEnvironment["NXC_HOST"], "environment of PID 1 (NXC_HOST)"),
            (option, "option --host"),
            ((try? Files.readIfPresent(root.path("/etc/nxc/hostname"), limit: 4096))
                .flatMap { $0 }.map { String(decoding: $0, as: UTF8.self) },
             "/etc/nxc/hostname (saved by an earlier boot)"),
        ]
        for (value, source) in candidates {
            guard let name = BootContext.given(value) else { continue }
            if let option = BootContext.given(option), option != name {
                log.warning("--host \(option) is ignored: \(source) names this node \(name)")
            }
            return (name, source)
        }
        return nil
    }

    // MARK: Which deployment

    /// Where a deployment document can come from, in the order they are tried.
    enum DeploymentSource {
        /// `nxc.deployment=BASE64` on the kernel command line.
        case commandLine(String)
        /// `nxc.deployment_url=URL` on the kernel command line. Fetching over
        /// HTTP is not part of this agent version: the source is named in the
        /// log and skipped, never used silently.
        case url(String)
        /// A file given explicitly: it must exist.
        case file(path: String, origin: String)
        /// A file saved by an earlier boot: used if it exists.
        case savedFile(path: String)
    }

    func deploymentSources(option: String?) -> [DeploymentSource] {
        var sources: [DeploymentSource] = []
        if let text = kernelParameters["nxc.deployment"] { sources.append(.commandLine(text)) }
        if let url = BootContext.given(kernelParameters["nxc.deployment_url"]) { sources.append(.url(url)) }
        if let path = BootContext.given(option) { sources.append(.file(path: path, origin: "--deployment")) }
        if let path = BootContext.given(environmentVariable("NXC_DEPLOYMENT_FILE")) {
            sources.append(.file(path: path, origin: "NXC_DEPLOYMENT_FILE"))
        }
        if let path = BootContext.given(initEnvironment["NXC_DEPLOYMENT_FILE"]) {
            // A path in the node's file system, as PID 1 sees it.
            sources.append(.file(path: root.path(path), origin: "NXC_DEPLOYMENT_FILE of PID 1"))
        }
        sources.append(.savedFile(path: root.path("/etc/nxc/deployment.json")))
        return sources
    }

    /// The first deployment document found. A source that is given but
    /// broken is an error: falling through to an older document would
    /// configure the node from stale data without anyone noticing.
    func deployment(option: String?) throws -> Deployment {
        for source in deploymentSources(option: option) {
            switch source {
            case let .commandLine(text):
                let origin = "kernel command line (nxc.deployment)"
                guard let bytes = Base64.decode(text) else { throw AgentError.badBase64(origin: origin) }
                return try Deployment(bytes: bytes, origin: origin)
            case let .url(url):
                log.warning("nxc.deployment_url=\(url) is on the kernel command line, but this agent "
                    + "does not fetch deployments over HTTP; looking for the deployment elsewhere")
            case let .file(path, origin):
                return try Deployment(bytes: Files.readBytes(path), origin: "\(path) (\(origin))")
            case let .savedFile(path):
                if let bytes = try Files.readIfPresent(path) {
                    return try Deployment(bytes: bytes, origin: path)
                }
            }
        }
        throw AgentError.noDeployment
    }

    /// /etc/nxc/composition.json.
    func composition() throws -> CompositionRoles {
        let path = root.path(CompositionRoles.path)
        return try CompositionRoles(bytes: Files.readBytes(path), origin: path)
    }
}
