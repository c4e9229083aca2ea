import Foundation

/// The deployment document (version 1): which host plays which role, with the keys and
/// addresses that make them a cluster. Written to `deploy/<composition>.<flavour>.json`,
/// read by the agent on every node. See docs/deployment.md.
public struct Deployment: Codable, Sendable, Equatable {
    public struct Route: Codable, Sendable, Equatable {
        public var to: String
        public var via: String
        public init(to: String, via: String) { self.to = to; self.via = via }
    }

    public struct Interface: Codable, Sendable, Equatable {
        public var mac: String
        public var addresses: [String]
        public var routes: [Route]?
        public init(mac: String, addresses: [String], routes: [Route]? = nil) {
            self.mac = mac
            self.addresses = addresses
            self.routes = routes
        }
    }

    /// How the deployer reaches a node's sshd.
    public struct SSHEndpoint: Codable, Sendable, Equatable {
        public var host: String
        public var port: Int
        public var user: String
        public init(host: String, port: Int, user: String = "root") { self.host = host; self.port = port; self.user = user }
    }

    public struct Node: Codable, Sendable, Equatable {
        public var role: String
        /// Where other nodes reach it; nil when the engine resolves node names (containers).
        public var address: String?
        public var interfaces: [Interface]?
        public var ssh: SSHEndpoint?
        public init(role: String, address: String?, interfaces: [Interface]? = nil, ssh: SSHEndpoint? = nil) {
            self.role = role
            self.address = address
            self.interfaces = interfaces
            self.ssh = ssh
        }
    }

    public var version: Int = 1
    public var composition: String
    public var flavour: String
    public var authorizedKeys: [String]
    public var nodes: [String: Node]
    /// Node names in deployment order (role order of the composition, then index).
    public var order: [String]

    enum CodingKeys: String, CodingKey {
        case version, composition, flavour, nodes, order
        case authorizedKeys = "authorized_keys"
    }

    public init(composition: String, flavour: String, authorizedKeys: [String], nodes: [String: Node], order: [String]) {
        self.composition = composition
        self.flavour = flavour
        self.authorizedKeys = authorizedKeys
        self.nodes = nodes
        self.order = order
    }

    public func encoded(pretty: Bool = true) throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return try enc.encode(self)
    }

    public static func load(path: String) throws -> Deployment {
        guard let data = FileManager.default.contents(atPath: path) else { throw DeployError.noDeployment(path) }
        do {
            let d = try JSONDecoder().decode(Deployment.self, from: data)
            guard d.version == 1 else { throw DeployError.badInput(path, problem: "unsupported deployment version \(d.version)") }
            return d
        } catch let e as DecodingError {
            throw DeployError.badInput(path, problem: "not a deployment document: \(e)")
        }
    }

    /// Nodes named `target`, or all nodes of the role `target`.
    public func resolve(_ target: String) throws -> [String] {
        if nodes[target] != nil { return [target] }
        let ofRole = order.filter { nodes[$0]?.role == target }
        if ofRole.isEmpty {
            throw DeployError.unknownTarget(target, known: order, roles: Array(Set(nodes.values.map(\.role))).sorted())
        }
        return ofRole
    }
}
