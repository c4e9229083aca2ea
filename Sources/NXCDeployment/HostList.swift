import Foundation

/// A reserved host as listed in a machine file: `host`, `host:port`, `user@host`, `user@[v6]:port`.
public struct TestbedHost: Sendable, Hashable, Codable, CustomStringConvertible {
    public var name: String
    public var port: Int?
    public var user: String?
    /// Its network card's MAC address, lower case with colons (`host MAC` lines; the pxe method binds
    /// nodes to machines by it).
    public var mac: String?

    public init(name: String, port: Int? = nil, user: String? = nil, mac: String? = nil) {
        self.name = name
        self.port = port
        self.user = user
        self.mac = mac
    }

    /// As the user wrote it (and as it appears in tables and errors).
    public var description: String {
        var s = user.map { "\($0)@" } ?? ""
        s += name.contains(":") ? "[\(name)]" : name
        if let port { s += ":\(port)" }
        return s
    }
}

/// Machine files (`-m FILE`, `$OAR_NODEFILE`): one host per line, duplicates merged
/// (OAR repeats a host once per core), blank and `#` lines ignored. A line may give the host's MAC
/// address after it (`host 52:54:00:12:34:56`), for machines that boot from the network (pxe).
public enum HostList {
    public static func load(path: String) throws -> [TestbedHost] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw DeployError.badInput(path, problem: "cannot read the machine file")
        }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws -> [TestbedHost] {
        var hosts: [TestbedHost] = []
        var seen = Set<TestbedHost>()
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let at = "\(file):\(i + 1)"
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard fields.count <= 2 else {
                throw DeployError.badInput(at, problem: "'\(line)': one host per line, optionally followed by its MAC address")
            }
            var host = try parseLine(fields[0], at: at)
            if fields.count == 2 {
                guard let mac = normalizedMAC(fields[1]) else {
                    throw DeployError.badInput(at, problem: "'\(fields[1])' is not a MAC address (expected six hex pairs, as 52:54:00:12:34:56)")
                }
                if let other = hosts.first(where: { $0.mac == mac && $0.name != host.name }) {
                    throw DeployError.badInput(at, problem: "MAC address \(mac) is also given to \(other)")
                }
                host.mac = mac
            }
            if seen.insert(host).inserted { hosts.append(host) }
        }
        if hosts.isEmpty { throw DeployError.badInput(file, problem: "no host in the machine file") }
        return hosts
    }

    /// `52:54:00:AB:CD:EF` or `52-54-00-ab-cd-ef` as `52:54:00:ab:cd:ef`; nil if it is not six hex pairs.
    public static func normalizedMAC(_ text: String) -> String? {
        let pairs = text.lowercased().split(omittingEmptySubsequences: false, whereSeparator: { $0 == ":" || $0 == "-" })
        guard pairs.count == 6, pairs.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isHexDigit) }) else { return nil }
        return pairs.joined(separator: ":")
    }

    static func parseLine(_ line: String, at where_: String) throws -> TestbedHost {
        func bad(_ why: String) -> DeployError { .badInput(where_, problem: "'\(line)': \(why)") }
        if line.contains(where: { $0 == " " || $0 == "\t" }) { throw bad("one host per line, without spaces") }
        var rest = Substring(line)
        var user: String?
        if let at = rest.firstIndex(of: "@") {
            let u = String(rest[..<at])
            guard !u.isEmpty, u.allSatisfy({ $0.isLetter || $0.isNumber || "._-".contains($0) }) else { throw bad("bad user name '\(u)'") }
            // ssh would read it as an option (`-l` takes it whole, but nothing else should have to).
            if u.hasPrefix("-") { throw bad("a user name cannot start with '-'") }
            user = u
            rest = rest[rest.index(after: at)...]
        }
        var name: String
        var port: Int?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw bad("missing ']' after an IPv6 address") }
            name = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw bad("expected ':PORT' after ']'") }
                port = Int(after.dropFirst())
                if port == nil { throw bad("'\(after.dropFirst())' is not a port") }
            }
        } else {
            let parts = rest.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2 else { throw bad("write IPv6 addresses as [ADDRESS]:PORT") }
            name = String(parts[0])
            if parts.count == 2 {
                guard let p = Int(parts[1]) else { throw bad("'\(parts[1])' is not a port") }
                port = p
            }
        }
        if let p = port, !(1...65535).contains(p) { throw bad("port \(p) is out of range (1-65535)") }
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || ".-_:".contains($0) }) else {
            throw bad("'\(name)' is not a host name or address")
        }
        // ssh, ssh-keygen and Kadeploy would read it as an option.
        if name.hasPrefix("-") { throw bad("a host name cannot start with '-'") }
        return TestbedHost(name: name, port: port, user: user)
    }
}

/// Which host plays which node: counts from the composition, `-r role=N`, `-r role=host1,host2`,
/// or a role-distribution file. Deterministic: roles in composition order, hosts in file order.
public struct HostBinding: Sendable {
    public struct Entry: Sendable, Codable {
        public var node: String
        public var role: String
        public var host: TestbedHost

        public init(node: String, role: String, host: TestbedHost) {
            self.node = node
            self.role = role
            self.host = host
        }
    }

    public var entries: [Entry]
    /// Hosts of the machine file that play no node: spares, which take the node of a host that fails.
    public var unused: [TestbedHost]
    /// The fewest nodes each role may run with (RoleDistribution.minimums).
    public var minimum: [String: Int]

    public init(entries: [Entry], unused: [TestbedHost], minimum: [String: Int] = [:]) {
        self.entries = entries
        self.unused = unused
        self.minimum = minimum
    }
}
