import Foundation
import NXCDeployment

extension Deployment {
    /// The document of a testbed start: each node's interfaces, addresses and routes, and its
    /// address, from what its host reported (`@addr`, `@route`: `ip -j` output).
    public static func fromFacts(composition: String, flavour: String, key: String, runs: [TestbedRun]) -> Deployment {
        struct Link { var mac: String; var name: String; var addresses: [String]; var routes: [Deployment.Route] }
        func links(_ r: TestbedRun) -> [Link] {
            guard let a = r.facts["addr"], let data = a.data(using: .utf8),
                  let list = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else { return [] }
            let routes = (r.facts["route"]?.data(using: .utf8)).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [[String: Any]] } ?? []
            return list.compactMap { l in
                guard (l["link_type"] as? String) == "ether", let mac = l["address"] as? String, let name = l["ifname"] as? String else { return nil }
                let addrs = (l["addr_info"] as? [[String: Any]] ?? []).compactMap { ai -> String? in
                    guard (ai["scope"] as? String) == "global", let local = ai["local"] as? String, let len = ai["prefixlen"] as? Int else { return nil }
                    return "\(local)/\(len)"
                }
                let rts = routes.compactMap { rt -> Deployment.Route? in
                    guard (rt["dev"] as? String) == name, let gw = rt["gateway"] as? String, let dst = rt["dst"] as? String else { return nil }
                    return Deployment.Route(to: dst, via: gw)
                }
                return Link(mac: mac, name: name, addresses: addrs, routes: rts)
            }
        }
        let all = runs.map { ($0, links($0)) }
        // An address other nodes can use: IPv4, unique among the hosts, on the default route's link if it has one.
        var counts: [String: Int] = [:]
        for (_, ls) in all { for l in ls { for a in l.addresses { counts[a.split(separator: "/")[0].description, default: 0] += 1 } } }
        var nodes: [String: Deployment.Node] = [:]
        for (r, ls) in all {
            let v4 = ls.sorted { !$0.routes.isEmpty && $1.routes.isEmpty }
                .flatMap { $0.addresses }.map { String($0.split(separator: "/")[0]) }
                .filter { !$0.contains(":") && counts[$0] == 1 }
            let address = v4.first ?? r.entry.host.name
            nodes[r.entry.node] = Deployment.Node(
                role: r.entry.role, address: address,
                interfaces: ls.isEmpty ? nil : ls.map { .init(mac: $0.mac, addresses: $0.addresses, routes: $0.routes.isEmpty ? nil : $0.routes) },
                ssh: .init(host: r.entry.host.name, port: r.entry.host.port ?? 22))
        }
        return Deployment(composition: composition, flavour: flavour, authorizedKeys: [key],
                          nodes: nodes, order: runs.map(\.entry.node))
    }
}
