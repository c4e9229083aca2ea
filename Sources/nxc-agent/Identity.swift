/// What this node is told about itself at boot: the kernel command line,
/// its own environment, the environment of PID 1 (container engines give
/// their variables to PID 1, which systemd does not pass on to services),
/// command-line options, and what an earlier boot saved under /etc/nxc.
struct BootContext {
    let root: SystemRoot
    let log: Logger
    /// `key=value` words of /proc/cmdline; the last of a repeated key wins.
    let kernelParameters: [String: String]
    /// The same words in order, repeated keys included (`nxc.if=`, `nxc.route=`).
    let kernelWords: [(key: String, value: String)]
    /// The environment of PID 1, from /proc/1/environ.
    let initEnvironment: [String: String]

    init(root: SystemRoot, log: Logger) {
        self.root = root
        self.log = log
        let cmdline = (try? Files.readBytes(root.path("/proc/cmdline"), limit: 1 << 20)) ?? []
        kernelWords = BootContext.commandLineWords(String(decoding: cmdline, as: UTF8.self))
        kernelParameters = BootContext.parameters(kernelWords)
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
        parameters(commandLineWords(text))
    }

    /// The last value of each key.
    static func parameters(_ words: [(key: String, value: String)]) -> [String: String] {
        var parameters: [String: String] = [:]
        for (key, value) in words { parameters[key] = value }
        return parameters
    }

    /// The `key=value` words of a kernel command line in order (a word
    /// without "=" has an empty value).
    static func commandLineWords(_ text: String) -> [(key: String, value: String)] {
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
        return words.map { word in
            guard let equals = word.firstIndex(of: "=") else { return (word, "") }
            return (String(word[..<equals]), String(word[word.index(after: equals)...]))
        }
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
        /// `nxc.deployment_url=URL` on the kernel command line: `boot`
        /// fetches it (after setting up `nxc.if=` and `nxc.route=`); the
        /// generator and `whoami` never touch the network and read the copy
        /// `boot` saved in this boot, `fetchedPath`, if there is one.
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

    /// Where `boot` keeps the document it fetched from nxc.deployment_url
    /// for the rest of this boot (/run is empty at each boot): the
    /// generator, run again by `systemctl daemon-reload`, and `whoami` read it.
    static let fetchedPath = "/run/nxc/deployment.json"

    /// The first deployment document found. A source that is given but
    /// broken is an error: falling through to an older document would
    /// configure the node from stale data without anyone noticing.
    /// `fetch` gets the document at nxc.deployment_url (only `boot` gives
    /// one); without it, the copy saved at `fetchedPath` is used, or the URL
    /// is an error: the document saved by an earlier boot may be stale.
    func deployment(option: String?, fetch: ((HTTPURL) throws -> [UInt8])? = nil) throws -> Deployment {
        let sources = deploymentSources(option: option)
        for source in sources {
            switch source {
            case let .commandLine(text):
                let origin = "kernel command line (nxc.deployment)"
                if sources.contains(where: { if case .url = $0 { return true } else { return false } }) {
                    log.warning("nxc.deployment_url is ignored: nxc.deployment is also on the kernel command line")
                }
                guard let bytes = Base64.decode(text) else { throw AgentError.badBase64(origin: origin) }
                return try Deployment(bytes: bytes, origin: origin)
            case let .url(text):
                let url = try HTTPURL(text)
                if let fetch {
                    var deployment = try Deployment(bytes: fetch(url), origin: "\(url) (nxc.deployment_url)")
                    deployment.fetched = true
                    return deployment
                }
                let path = root.path(BootContext.fetchedPath)
                guard let bytes = try Files.readIfPresent(path) else { throw AgentError.notFetched(url: text) }
                return try Deployment(bytes: bytes, origin: "\(path) (fetched from \(url) in this boot)")
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

    /// The network this node needs to reach nxc.deployment_url before it
    /// has the document: `nxc.if=MAC,ADDRESS/PREFIX[,ADDRESS/PREFIX...]`
    /// (one per interface) and `nxc.route=TO,VIA` (TO is "default" or a
    /// CIDR prefix), in command-line order.
    func commandLineNetwork() throws -> (interfaces: [Deployment.Interface], routes: [Deployment.Route]) {
        var interfaces: [Deployment.Interface] = []
        var routes: [Deployment.Route] = []
        for (key, value) in kernelWords where key == "nxc.if" || key == "nxc.route" {
            let word = "\(key)=\(value)"
            let parts = value.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmed() }
            if key == "nxc.if" {
                let mac = parts[0].lowercased()
                guard Validate.isMAC(mac) else {
                    throw AgentError.kernelParameter(word: word, message: "\"\(parts[0])\" is not a MAC address "
                        + "(expected nxc.if=xx:xx:xx:xx:xx:xx,ADDRESS/PREFIX[,ADDRESS/PREFIX...])")
                }
                // ADDRESS/NETMASK (dotted, as iPXE's ${netX/netmask} gives it) is taken as ADDRESS/PREFIX.
                let addresses = parts.dropFirst().map { Validate.withPrefixLength($0) }
                for address in addresses where !Validate.isCIDR(address) {
                    throw AgentError.kernelParameter(word: word, message: "\"\(address)\" is not ADDRESS/PREFIX")
                }
                interfaces.append(Deployment.Interface(mac: mac, addresses: addresses, routes: []))
            } else {
                guard parts.count == 2 else {
                    throw AgentError.kernelParameter(word: word, message: "expected nxc.route=TO,VIA")
                }
                guard parts[0] == "default" || Validate.isCIDR(parts[0]) else {
                    throw AgentError.kernelParameter(word: word,
                                                     message: "\"\(parts[0])\" is neither \"default\" nor ADDRESS/PREFIX")
                }
                // No gateway: a DHCP server that gave none (pxe: nxc.route=default,${netX/gateway}).
                if parts[1].isEmpty {
                    log.info("\(word): no gateway given; no route added")
                    continue
                }
                guard Validate.isIPAddress(parts[1]) else {
                    throw AgentError.kernelParameter(word: word, message: "\"\(parts[1])\" is not an IP address")
                }
                routes.append(Deployment.Route(to: parts[0], via: parts[1]))
            }
        }
        return (interfaces, routes)
    }

    /// /etc/nxc/composition.json.
    func composition() throws -> CompositionRoles {
        let path = root.path(CompositionRoles.path)
        return try CompositionRoles(bytes: Files.readBytes(path), origin: path)
    }
}
