/// A position in a composition file, carried by every value that a later stage may reject.
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// A value and where it was written.
public struct Located<Value: Sendable & Hashable>: Sendable, Hashable {
    public var value: Value
    public var location: SourceLocation
    /// Dotted path of the key, e.g. `roles.server.packages[1]`.
    public var key: String

    public init(_ value: Value, at location: SourceLocation, key: String) {
        self.value = value
        self.location = location
        self.key = key
    }
}

/// The Debian distribution a composition is built from.
public struct Distribution: Sendable, Hashable {
    public var suite: String
    /// nil: the mirror the host's apt uses (or `--mirror`).
    public var mirror: String?
    public var components: [String]
    public var architecture: String

    public init(suite: String = "bookworm", mirror: String? = nil, components: [String] = ["main"],
                architecture: String = "amd64") {
        self.suite = suite
        self.mirror = mirror
        self.components = components
        self.architecture = architecture
    }
}

/// A file a role puts into the image.
public struct FileSpec: Sendable, Hashable {
    public var path: String
    public var content: [UInt8]
    public var mode: UInt32
    public var location: SourceLocation
    /// The `source:` file the content was read from, as written (nil: inline `content:`).
    public var source: String?

    public init(path: String, content: [UInt8], mode: UInt32, location: SourceLocation, source: String? = nil) {
        self.path = path
        self.content = content
        self.mode = mode
        self.location = location
        self.source = source
    }
}

/// The mission of a node: what it installs, runs and carries.
public struct Role: Sendable, Hashable {
    public var name: String
    public var count: Int
    public var packages: [Located<String>]
    public var services: [Located<String>]
    public var files: [FileSpec]
    /// Memory of a VM playing this role, in MiB; nil: the flavour's default.
    public var memoryMiB: Int?
    /// Ports a container of this role publishes (flavours that run containers).
    public var ports: [PortSpec] = []
    /// The fewest nodes the role may run with on reserved hosts (`min`): a start goes on without
    /// the others when their hosts fail and no spare is left. nil: every node is needed.
    public var minimum: Int?
    /// Absolute paths `nxc collect` gathers from this role's nodes (files or folders).
    public var collect: [Located<String>] = []
    /// Folders each node of this role keeps as its own, across boots, on the store host (netroot
    /// flavours: nfs-store, pxe-nfs-store); elsewhere they are where the rest of the system is.
    public var state: [Located<String>] = []
    public var location: SourceLocation

    public init(name: String, count: Int = 1, packages: [Located<String>] = [], services: [Located<String>] = [],
                files: [FileSpec] = [], memoryMiB: Int? = nil, location: SourceLocation) {
        self.name = name
        self.count = count
        self.packages = packages
        self.services = services
        self.files = files
        self.memoryMiB = memoryMiB
        self.location = location
    }

    /// Host names of the nodes of this role for `count` nodes: the role's name for one, `name1…nameN` otherwise.
    public func hostNames(count: Int? = nil) -> [String] {
        let n = count ?? self.count
        if n == 1 { return [name] }
        return (1...max(n, 1)).map { "\(name)\($0)" }
    }
}

/// A validated composition: roles, packages, services and files, with where each was written.
public struct Composition: Sendable, Hashable {
    public var name: String
    /// Absolute path of the composition file.
    public var file: String
    public var distribution: Distribution
    public var packages: [Located<String>]
    public var roles: [Role]
    public var test: String?

    public init(name: String, file: String, distribution: Distribution = Distribution(),
                packages: [Located<String>] = [], roles: [Role], test: String? = nil) {
        self.name = name
        self.file = file
        self.distribution = distribution
        self.packages = packages
        self.roles = roles
        self.test = test
    }

    public func role(named name: String) -> Role? { roles.first { $0.name == name } }

    /// Every package of every role and the common ones, sorted and unique.
    public var allPackages: [String] {
        Array(Set(packages.map(\.value) + roles.flatMap { $0.packages.map(\.value) })).sorted()
    }

    /// Where a package was first named (for build-time errors).
    public func location(ofPackage name: String) -> Located<String>? {
        packages.first { $0.value == name } ?? roles.lazy.compactMap { $0.packages.first { $0.value == name } }.first
    }
}

/// A port a role's containers publish: `80` (an ephemeral host port), `"8080:80"`,
/// `"0.0.0.0:8080:80"`, with `/udp` for UDP. On 127.0.0.1 unless an address is given.
public struct PortSpec: Sendable, Hashable {
    public var hostAddress: String
    public var hostPort: Int?
    public var containerPort: Int
    public var proto: String
    public var location: SourceLocation

    public init(hostAddress: String = "127.0.0.1", hostPort: Int? = nil, containerPort: Int, proto: String = "tcp",
                location: SourceLocation) {
        self.hostAddress = hostAddress
        self.hostPort = hostPort
        self.containerPort = containerPort
        self.proto = proto
        self.location = location
    }

    /// Parses one item of `ports:`; nil when the text is not of a form above.
    public static func parse(_ text: String, location: SourceLocation) -> PortSpec? {
        var body = Substring(text)
        var proto = "tcp"
        if let slash = body.lastIndex(of: "/") {
            proto = String(body[body.index(after: slash)...])
            body = body[..<slash]
            guard proto == "tcp" || proto == "udp" else { return nil }
        }
        var address = "127.0.0.1"
        var parts = body.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        if parts.count == 3 {
            address = parts.removeFirst()
            let octets = address.split(separator: ".", omittingEmptySubsequences: false)
            guard octets.count == 4, octets.allSatisfy({ UInt8($0) != nil && !$0.isEmpty }) else { return nil }
        }
        func port(_ s: String) -> Int? {
            guard let v = Int(s), (1...65535).contains(v), s.allSatisfy(\.isNumber) else { return nil }
            return v
        }
        switch parts.count {
        case 1:
            guard let c = port(parts[0]) else { return nil }
            return PortSpec(hostAddress: address, containerPort: c, proto: proto, location: location)
        case 2:
            guard let h = port(parts[0]), let c = port(parts[1]) else { return nil }
            return PortSpec(hostAddress: address, hostPort: h, containerPort: c, proto: proto, location: location)
        default:
            return nil
        }
    }

    /// The compose-file form: `ADDRESS:HOST:CONTAINER/PROTO`, `ADDRESS::CONTAINER/PROTO` for an ephemeral port.
    public var composeForm: String {
        "\(hostAddress):\(hostPort.map(String.init) ?? ""):\(containerPort)/\(proto)"
    }
}
