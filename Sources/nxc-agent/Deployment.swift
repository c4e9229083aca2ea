import Glibc
import NXCNames

/// The deployment document (version 1), as far as the agent needs it.
/// Keys it does not know are ignored: the document is extensible.
struct Deployment {
    static let version = 1

    /// The document exactly as received, kept for /etc/nxc/deployment.json.
    let bytes: [UInt8]
    /// Where it came from ("kernel command line (nxc.deployment)", a path).
    let origin: String
    let composition: String?
    let flavour: String?
    let authorizedKeys: [String]
    let nodes: [String: Node]
    /// Fetched from nxc.deployment_url by this run (`boot` keeps a copy for this boot).
    var fetched = false

    /// One node of the deployment.
    struct Node {
        let name: String
        let role: String
        /// The address other nodes reach it at; absent if the engine resolves names.
        let address: String?
        /// Interfaces to configure (VMs, kexec'd hosts); empty for containers.
        let interfaces: [Interface]
    }

    /// An interface, found by its MAC address, with what to put on it.
    struct Interface {
        /// Lower case, `xx:xx:xx:xx:xx:xx`.
        let mac: String
        /// `ADDRESS/PREFIX` (or a bare address).
        let addresses: [String]
        let routes: [Route]
    }

    /// A route: `to` is "default" or a CIDR prefix; `via` may be absent for an on-link route.
    struct Route {
        let to: String
        let via: String?
    }

    init(bytes: [UInt8], origin: String) throws {
        let root = try JSONDocument(bytes: bytes, origin: origin).root
        guard root.isObject else { throw root.invalid("must be a JSON object, not \(root.kind)") }
        if let version = root.member("version"), version.integer != Deployment.version {
            throw version.invalid("this agent reads version \(Deployment.version) only")
        }
        self.bytes = bytes
        self.origin = origin
        composition = try root.optionalString("composition")
        flavour = try root.optionalString("flavour")
        let keys = try root.optionalArray("authorized_keys") ?? []
        authorizedKeys = try keys.compactMap { item in
            guard let key = item.string else { throw item.invalid("must be a string, not \(item.kind)") }
            guard !key.contains(where: { $0 == "\n" || $0 == "\r" || $0 == "\0" }) else {
                throw item.invalid("an authorized key must be one line")
            }
            let trimmed = key.trimmed()
            return trimmed.isEmpty ? nil : trimmed
        }
        var nodes: [String: Node] = [:]
        for (name, value) in try root.requiredObject("nodes").members ?? [] {
            guard Validate.isHostName(name) else {
                throw value.invalid("node name is not a valid host name (letters, digits, '-', '.'; "
                    + "at most 64 characters)")
            }
            nodes[name] = try Node(name: name, value)
        }
        self.nodes = nodes
    }

    /// The node names, sorted.
    var nodeNames: [String] { nodes.keys.sorted() }

    /// The node called `name`, or an error naming it and the known ones.
    func node(_ name: String) throws -> Node {
        guard let node = nodes[name] else {
            throw AgentError.unknownNode(name: name, origin: origin, known: nodeNames)
        }
        return node
    }
}

extension Deployment.Node {
    init(name: String, _ value: JSONValue) throws {
        guard value.isObject else { throw value.invalid("must be an object, not \(value.kind)") }
        self.name = name
        role = try value.requiredString("role")
        guard Validate.isRoleName(role) else {
            throw value.invalid("role \"\(role)\" is not a valid role name (letters, digits, '_', '-', '.')")
        }
        address = try value.optionalString("address")
        if let address, !Validate.isIPAddress(address) {
            throw value.invalid("address \"\(address)\" is not an IPv4 or IPv6 address")
        }
        interfaces = try (value.optionalArray("interfaces") ?? []).map(Deployment.Interface.init)
    }
}

extension Deployment.Interface {
    init(_ value: JSONValue) throws {
        guard value.isObject else { throw value.invalid("must be an object, not \(value.kind)") }
        let mac = try value.requiredString("mac").lowercased()
        guard Validate.isMAC(mac) else { throw value.invalid("mac \"\(mac)\" is not xx:xx:xx:xx:xx:xx") }
        self.mac = mac
        addresses = try value.optionalStrings("addresses") ?? []
        for address in addresses where !Validate.isCIDR(address) {
            throw value.invalid("address \"\(address)\" is not ADDRESS/PREFIX")
        }
        routes = try (value.optionalArray("routes") ?? []).map { route in
            guard route.isObject else { throw route.invalid("must be an object, not \(route.kind)") }
            let to = try route.requiredString("to")
            guard to == "default" || Validate.isCIDR(to) else {
                throw route.invalid("to \"\(to)\" is neither \"default\" nor ADDRESS/PREFIX")
            }
            let via = try route.optionalString("via")
            if let via, !Validate.isIPAddress(via) {
                throw route.invalid("via \"\(via)\" is not an IP address")
            }
            return Deployment.Route(to: to, via: via)
        }
    }
}

/// /etc/nxc/composition.json, written when the image is built: the services
/// of each role, as systemd unit names.
struct CompositionRoles {
    static let path = "/etc/nxc/composition.json"

    let name: String?
    /// role -> unit names ("nginx" became "nginx.service").
    let services: [String: [String]]
    /// role -> absolute paths of the role's files, shipped in the image under
    /// `rolesDirectory/ROLE/PATH` and installed at PATH on that role's nodes.
    let files: [String: [String]]

    static let rolesDirectory = "/usr/share/nxc/roles"

    init(bytes: [UInt8], origin: String) throws {
        let root = try JSONDocument(bytes: bytes, origin: origin).root
        guard root.isObject else { throw root.invalid("must be a JSON object, not \(root.kind)") }
        if let version = root.member("version"), version.integer != 1 {
            throw version.invalid("this agent reads version 1 only")
        }
        name = try root.optionalString("name")
        var services: [String: [String]] = [:]
        var files: [String: [String]] = [:]
        for (role, value) in try root.requiredObject("roles").members ?? [] {
            guard value.isObject else { throw value.invalid("must be an object, not \(value.kind)") }
            guard Validate.isRoleName(role) else { throw value.invalid("\"\(role)\" is not a valid role name") }
            files[role] = try (value.optionalArray("files") ?? []).map { item in
                guard let path = item.string else { throw item.invalid("must be a string, not \(item.kind)") }
                guard Validate.isPlainAbsolutePath(path) else {
                    throw item.invalid("\"\(path)\" is not an absolute path without \".\", \"..\" or empty parts")
                }
                return path
            }
            services[role] = try (value.optionalArray("services") ?? []).map { item in
                guard let service = item.string else { throw item.invalid("must be a string, not \(item.kind)") }
                guard let unit = UnitName.normalize(service) else {
                    throw item.invalid("\"\(service)\" is not a valid systemd unit name")
                }
                return unit
            }
        }
        self.services = services
        self.files = files
    }

    /// Every unit of any role, sorted, without duplicates.
    var allUnits: [String] { Set(services.values.joined()).sorted() }

    /// Units that belong to other roles and not to `role`: the ones to mask.
    func unitsForeign(to role: String) -> [String] {
        let own = Set(services[role] ?? [])
        return allUnits.filter { !own.contains($0) }
    }
}

/// Checks on values that end up in files, argv and system calls.
enum Validate {
    /// RFC 1123 host name that fits sethostname (64 bytes).
    static func isHostName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 64 else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            guard !label.isEmpty, label.utf8.count <= 63, label.first != "-", label.last != "-" else { return false }
            return label.utf8.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "-") }
        }
    }

    /// "/a/b/c": absolute, and no part empty, "." or "..", so joined to a
    /// prefix it stays under that prefix.
    static func isPlainAbsolutePath(_ path: String) -> Bool {
        guard path.hasPrefix("/"), path.utf8.count > 1, path.utf8.count < 4096, !path.contains("\0") else {
            return false
        }
        return path.dropFirst().split(separator: "/", omittingEmptySubsequences: false).allSatisfy { part in
            !part.isEmpty && part != "." && part != ".."
        }
    }

    static func isRoleName(_ name: String) -> Bool {
        !name.isEmpty && name.first != "-" && name.first != "."
            && name.utf8.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_")
                || $0 == UInt8(ascii: ".") }
    }

    static func isMAC(_ mac: String) -> Bool {
        let parts = mac.split(separator: ":", omittingEmptySubsequences: false)
        return parts.count == 6 && parts.allSatisfy { part in
            part.utf8.count == 2 && part.utf8.allSatisfy { isHexDigit($0) }
        }
    }

    static func isIPv4(_ text: String) -> Bool {
        var address = in_addr()
        return inet_pton(AF_INET, text, &address) == 1
    }

    static func isIPv6(_ text: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET6, text, &address) == 1
    }

    static func isIPAddress(_ text: String) -> Bool { isIPv4(text) || isIPv6(text) }

    /// `ADDRESS/PREFIX` with a prefix length that fits the family, or a bare address.
    /// `10.0.0.5/255.255.255.0` as `10.0.0.5/24`; anything else (a prefix length already, a mask
    /// whose ones are not contiguous) as it is, for isCIDR to judge.
    static func withPrefixLength(_ text: String) -> String {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, isIPv4(String(parts[0])), isIPv4(String(parts[1])) else { return text }
        var mask: UInt32 = 0
        for octet in parts[1].split(separator: ".") {
            guard let v = UInt32(octet) else { return text }
            mask = mask << 8 | v
        }
        let ones = mask.nonzeroBitCount
        guard mask == (ones == 0 ? 0 : ~UInt32(0) << (32 - ones)) else { return text }
        return "\(parts[0])/\(ones)"
    }

    static func isCIDR(_ text: String) -> Bool {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2 else { return false }
        let address = String(parts[0])
        let maximum: Int
        if isIPv4(address) { maximum = 32 } else if isIPv6(address) { maximum = 128 } else { return false }
        guard parts.count == 2 else { return true }
        let prefix = parts[1]
        guard !prefix.isEmpty, prefix.utf8.count <= 3, prefix.utf8.allSatisfy({ isDigit($0) }),
              let length = Int(prefix) else { return false }
        return length <= maximum
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        isDigit(byte) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
            || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        isDigit(byte) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
            || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "F"))
    }
}
