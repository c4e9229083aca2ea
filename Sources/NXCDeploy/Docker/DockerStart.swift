import Foundation
import NXCDeployment
import NXCTestbed
import NXCBuild
import NXCComposition
import NXCFlavours
import NXCStore

/// Runs one container per node on a Docker engine with docker-compose: loads the image unless the
/// engine has it already, brings the project up, and waits until every node's agent is done and
/// its role's services are active. `exec` and `connect` use `docker exec`.
struct DockerStart: StartMethod {
    var name: String { "docker" }
    var bindsHosts: Bool { false }
    var summary: String { "containers on this machine's Docker engine" }
    /// Readiness waits for role services, which may wait for the secret: sent right after `up`.
    var deliversSecret: Bool { true }

    /// What this method keeps in the deployment's state (`RuntimeState.own`): the compose project.
    struct State: Codable, Sendable {
        var name: String
        var composeFile: String
        /// Container of each node.
        var containers: [String: String]
    }

    /// The image this build wrote: its ID and name, from `image.id`.
    static func builtImage(_ buildDirectory: String, flavour: String) throws -> (id: String, reference: String) {
        let p = buildDirectory + "/image.id"
        guard let text = try? String(contentsOfFile: p, encoding: .utf8) else {
            throw DeployError.notBuilt(path: p, flavour: flavour)
        }
        let parts = text.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
        guard parts.count == 2, parts[0].hasPrefix("sha256:") else { throw DeployError.badInput(p, problem: "not `sha256:ID NAME`") }
        return (parts[0], parts[1])
    }

    /// A deployment for containers: no addresses (the engine's DNS resolves node names), no SSH.
    static func deployment(composition: String, flavour: String, nodes: [(node: String, role: String)], keys: [String]) -> Deployment {
        var map: [String: Deployment.Node] = [:]
        for n in nodes { map[n.node] = Deployment.Node(role: n.role, address: nil) }
        return Deployment(composition: composition, flavour: flavour, authorizedKeys: keys, nodes: map, order: nodes.map(\.node))
    }

    func prepare(buildDirectory: String, composition: Composition, flavour: Flavour) throws -> [String] {
        // For running by hand: `docker load -i image.tar && docker-compose up -d` in this folder.
        let nodes = try RoleDistribution.resolve(composition, overrides: [])
        let image = try Self.builtImage(buildDirectory, flavour: flavour.name)
        let doc = Self.deployment(composition: composition.name, flavour: flavour.name, nodes: nodes, keys: [])
        let dp = buildDirectory + "/deployment.json"
        try writeAtomically(try doc.encoded(), to: dp)
        let header = """
            Written by `nxc build -f \(flavour.name)` for composition '\(composition.name)': one service per node.
            By hand, in this folder: docker load -i image.tar && docker-compose up -d
            (`nxc start -f \(flavour.name)` writes its own copy for the nodes it starts, with your SSH key.)
            """
        let cp = buildDirectory + "/docker-compose.yml"
        try writeAtomically(Data(ComposeFile.text(composition: composition, nodes: nodes, image: image.reference,
                                                  deployment: "./deployment.json", containerPrefix: "nxc-" + composition.name,
                                                  header: header, cgroups: .detect()).utf8), to: cp)
        return [dp, cp]
    }

    /// `docker-compose` (v1, Debian's), else the `docker compose` plugin (v2).
    static func composeCommand() throws -> [String] {
        if Command.which("docker-compose") != nil { return ["docker-compose"] }
        if let (st, _) = try? Command.status(["docker", "compose", "version"], timeout: 20), st == 0 { return ["docker", "compose"] }
        throw DeployError.toolMissing("docker-compose", package: "docker-compose")
    }

    static func engineCheck() throws {
        guard Command.which("docker") != nil else { throw DeployError.toolMissing("docker", package: "docker.io") }
        let (st, out) = (try? Command.status(["docker", "info", "--format", "{{.ServerVersion}}"], timeout: 30)) ?? (124, "no answer in 30 s")
        guard st == 0 else {
            let said = out.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").last.map(String.init) ?? ""
            throw DeployError.serviceDown("Docker engine", detail: "`docker info`: \(said)", hint: "start dockerd (systemctl start docker) or check DOCKER_HOST")
        }
    }

    /// Compose project name for a run folder: one per project folder, composition and flavour.
    static func projectName(composition: String, runDirectory: String) -> String {
        "nxc-\(composition)-\(sha256(bytes: Array(runDirectory.utf8)).prefix(8))"
    }

    func start(_ ctx: StartContext) async throws -> (Deployment, RuntimeState) {
        try Self.engineCheck()
        let compose = try Self.composeCommand()
        let cgroups = ComposeFile.Cgroups.detect()
        if let why = cgroups.problem { throw DeployError.badInput("the Docker engine's settings", problem: why) }
        let image = try Self.builtImage(ctx.buildDirectory, flavour: ctx.flavour.name)
        let archive = ctx.buildDirectory + "/image.tar"
        let run = ctx.runDirectory
        if let old = RuntimeState.load(from: run), let p = old.own(State.self), !Self.runningContainers(p).isEmpty {
            throw DeployError.alreadyRunning("\(ctx.composition.name) (\(ctx.flavour.name)) is already running (compose project \(p.name)); `nxc stop` it first")
        }
        for n in ctx.nodes {
            let ports = ctx.composition.role(named: n.role)?.ports ?? []
            let count = ctx.nodes.filter { $0.role == n.role }.count
            if count > 1, let fixed = ports.first(where: { $0.hostPort != nil }) {
                throw DeployError.badInput("\(ctx.composition.file):\(fixed.location.line)", problem: "role \(n.role) publishes host port \(fixed.hostPort ?? 0) but has \(count) nodes; give only the container port")
            }
        }

        // 1. The image, unless the engine has this very one.
        let have = (try? Command.status(["docker", "image", "inspect", "--format", "{{.Id}}", image.reference], timeout: 30))
            .flatMap { $0.0 == 0 ? $0.1.trimmingCharacters(in: .whitespacesAndNewlines) : nil }
        if have == image.id {
            ctx.progress("image \(image.reference): already loaded (\(image.id.prefix(19)))")
        } else {
            ctx.progress("image \(image.reference): loading \(archive)")
            let t0 = Date()
            do {
                try Command.run(["docker", "load", "-i", archive], timeout: 1800)
            } catch {
                throw DeployError.commandFailed("docker load -i \(archive) failed", underlying: error)
            }
            let now = (try? Command.run(["docker", "image", "inspect", "--format", "{{.Id}}", image.reference], timeout: 30))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            guard now == image.id else {
                throw DeployError.processFailed("docker load", problem: "\(image.reference) is \(now ?? "missing") after it, not \(image.id) as \(ctx.buildDirectory)/image.id says")
            }
            ctx.progress(String(format: "image %@: loaded in %.1f s", image.reference, Date().timeIntervalSince(t0)))
        }

        // 2. The run folder: deployment and compose file for these nodes.
        let fm = FileManager.default
        try? fm.removeItem(atPath: run)
        try fm.createDirectory(atPath: run, withIntermediateDirectories: true)
        let doc = Self.deployment(composition: ctx.composition.name, flavour: ctx.flavour.name, nodes: ctx.nodes,
                                  keys: [ctx.identity.publicKey])
        try writeAtomically(try doc.encoded(), to: ctx.deploymentFile)
        try writeAtomically(try doc.encoded(), to: run + "/deployment.json")
        let name = Self.projectName(composition: ctx.composition.name, runDirectory: run)
        let composeFile = run + "/docker-compose.yml"
        try writeAtomically(Data(ComposeFile.text(composition: ctx.composition, nodes: ctx.nodes, image: image.reference,
                                                  deployment: run + "/deployment.json", containerPrefix: name,
                                                  header: "Written by `nxc start` (project \(ctx.project.directory)).",
                                                  cgroups: cgroups).utf8),
                            to: composeFile)
        let containers = Dictionary(uniqueKeysWithValues: ctx.nodes.map { ($0.node, name + "-" + $0.node) })
        let project = State(name: name, composeFile: composeFile, containers: containers)
        var state = RuntimeState(composition: ctx.composition.name, flavour: ctx.flavour.name, startMethod: self.name,
                                 identity: ctx.identity, knownHosts: run + "/known_hosts", startedAt: Date(), processes: [])
        try state.setOwn(project)
        try state.save(in: run)

        // 3. Up.
        ctx.progress("starting \(ctx.nodes.count) container(s) (compose project \(name)): \(ctx.nodes.map(\.node).joined(separator: ", "))")
        let (st, out) = try Command.status(compose + ["-p", name, "-f", composeFile, "up", "-d", "--no-build"],
                                           log: run + "/compose.log", timeout: 600)
        if st != 0 {
            _ = Self.down(project)
            throw DeployError.processFailed("docker-compose up", problem: "exit \(st) (\(run)/compose.log):\n\(out.trimmingCharacters(in: .whitespacesAndNewlines))")
        }

        // 4. The deployment's secret, as soon as `docker exec` reaches the containers: the readiness
        // below waits for role services, and those that derive a key (munge) wait for the secret.
        try await NodeSecret.install(deployment: doc, state: state, method: self, runDirectory: run,
                                     progress: ctx.progress)

        // 5. Wait for every node's agent and its role's services.
        ctx.progress("waiting up to \(Int(ctx.timeout)) s for \(ctx.nodes.count) node(s): agent done, role services active")
        let composition = ctx.composition
        try await Readiness.poll(ctx.nodes, timeout: ctx.timeout, progress: ctx.progress,
                                 log: { "docker logs \(containers[$0] ?? "")" }) { node, role in
            Self.readiness(container: containers[node] ?? "", node: node,
                           units: composition.role(named: role)?.services.map(\.value) ?? [])
        }
        var addresses: [String: String] = [:]
        for (node, c) in containers {
            if let ip = try? Command.run(["docker", "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", c], timeout: 30)
                .split(separator: " ").first.map(String.init) { addresses[node] = ip }
        }
        state.addresses = addresses
        state.startedAt = Date()
        try state.save(in: run)
        return (doc, state)
    }

    /// nil when the node is ready; otherwise why not (`Readiness.agentAndServices`), through `docker exec`.
    static func readiness(container: String, node: String, units: [String]) -> String? {
        Readiness.agentAndServices(node: node, units: units, logHint: "docker logs \(container)",
                                   run: { try? Command.status(["docker", "exec", container] + $0, timeout: 30) },
                                   machineState: {
                                       (try? Command.run(["docker", "inspect", "--format", "{{.State.Status}}", container], timeout: 30))?
                                           .trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
                                   })
    }

    /// Containers of the project that exist (any state).
    static func runningContainers(_ p: State) -> [String] {
        guard let out = try? Command.run(["docker", "ps", "-a", "-q", "--filter", "label=com.docker.compose.project=\(p.name)"], timeout: 30)
        else { return [] }
        return out.split(separator: "\n").map(String.init)
    }

    /// `compose down`: containers, networks and volumes of the project. Returns what is left.
    static func down(_ p: State) -> [String] {
        if let compose = try? composeCommand() {
            _ = try? Command.status(compose + ["-p", p.name, "-f", p.composeFile, "down", "--volumes", "--remove-orphans", "-t", "20"], timeout: 300)
        }
        // The engine removes each container's cgroup but not the parent nxc gave it; only root may
        // remove those (empty) directories, and rmdir(2) refuses any that still holds a cgroup.
        let cgroups = ComposeFile.Cgroups.detect()
        let hierarchies = ComposeFile.Cgroups.hierarchies()
        for c in p.containers.values.sorted() {
            for dir in cgroups.leftovers(container: c, hierarchies: hierarchies) { _ = rmdir(dir) }
        }
        var left: [String] = []
        for (kind, argv) in [("container", ["docker", "ps", "-a", "-q"]), ("network", ["docker", "network", "ls", "-q"]),
                             ("volume", ["docker", "volume", "ls", "-q"])] {
            let out = (try? Command.run(argv + ["--filter", "label=com.docker.compose.project=\(p.name)"], timeout: 30)) ?? ""
            for id in out.split(separator: "\n") { left.append("\(kind) \(id) of compose project \(p.name)") }
        }
        return left
    }

    func stop(_ state: RuntimeState, runDirectory: String) -> [String] {
        guard let p = state.own(State.self) else { return [] }
        return Self.down(p)
    }

    func remoteCommand(node: String, deployment: Deployment, state: RuntimeState, command: [String], interactive: Bool) -> [String] {
        guard let c = state.own(State.self)?.containers[node] else { return ["false"] }
        return ["docker", "exec", "-i"] + (interactive ? ["-t"] : []) + [c] + (command.isEmpty ? ["bash", "-l"] : command)
    }

    func nodeState(node: String, deployment: Deployment, state: RuntimeState) -> String {
        guard let c = state.own(State.self)?.containers[node],
              let (st, out) = try? Command.status(["docker", "inspect", "--format", "{{.State.Status}}", c], timeout: 15), st == 0
        else { return "stopped" }
        return out.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
