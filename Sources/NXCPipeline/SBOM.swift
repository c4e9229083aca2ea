import Foundation
import NXCArchive
import NXCBuild
import NXCComposition
import NXCDeploy
import NXCDeployment
import NXCFlavours
import NXCStore

/// Software bill of materials from a lock.
public enum SBOM {
    struct Document: Encodable {
        var bomFormat = "CycloneDX"
        var specVersion = "1.5"
        var serialNumber: String
        var version = 1
        var metadata: Metadata
        var components: [Component]
    }
    struct Metadata: Encodable {
        var timestamp: String
        var tools: Tools
        var component: Component
    }
    struct Tools: Encodable { var components: [Component] }
    struct Component: Encodable {
        var type: String
        var bomRef: String?
        var name: String
        var version: String?
        var purl: String?
        var hashes: [Hash]?
        var properties: [Property]?
        enum CodingKeys: String, CodingKey {
            case type, bomRef = "bom-ref", name, version, purl, hashes, properties
        }
    }
    struct Hash: Encodable { var alg: String; var content: String }
    struct Property: Encodable { var name: String; var value: String }

    /// CycloneDX 1.5 JSON: one component per package (purl `pkg:deb/debian/…`, .deb SHA-256, the
    /// flavours whose images hold it). The serial number derives from the lock, the timestamp is
    /// SOURCE_DATE_EPOCH: the same lock gives the same bytes.
    public static func cycloneDX(composition: String, lock: LockFile, tool: String = "nxc") throws -> [UInt8] {
        var users: [String: [String]] = [:]
        for (f, names) in lock.flavours { for n in names { users[n, default: []].append(f) } }
        let distro = "debian-\(lock.suite)"
        let components = lock.packages.keys.sorted().map { n -> Component in
            let p = lock.packages[n]!
            let purl = "pkg:deb/debian/\(n)@\(percentEncoded(p.version))?arch=\(p.architecture)&distro=\(distro)"
            return Component(type: "library", bomRef: purl, name: n, version: p.version, purl: purl,
                             hashes: [Hash(alg: "SHA-256", content: p.sha256)],
                             properties: [Property(name: "nxc:flavours", value: (users[n] ?? []).sorted().joined(separator: ","))])
        }
        let lockBytes = Array(lock.render(composition: composition).utf8)
        let h = Array(sha256(bytes: lockBytes).prefix(32))
        // An RFC 4122 form (version 5-like, name-based) so that the serial is stable for a lock.
        var hex = h
        hex[12] = "5"
        let variants: [Character] = ["8", "9", "a", "b"]
        hex[16] = variants[Int(String(hex[16]), radix: 16)! % 4]
        let s = String(hex)
        let uuid = "\(s.prefix(8))-\(s.dropFirst(8).prefix(4))-\(s.dropFirst(12).prefix(4))-\(s.dropFirst(16).prefix(4))-\(s.dropFirst(20))"
        let f = ISO8601DateFormatter()
        let doc = Document(serialNumber: "urn:uuid:\(uuid)",
                           metadata: Metadata(timestamp: f.string(from: Date(timeIntervalSince1970: TimeInterval(lock.sourceDateEpoch))),
                                              tools: Tools(components: [Component(type: "application", name: "nxc",
                                                                                            version: tool.split(separator: " ").last.map(String.init))]),
                                              component: Component(type: "application", bomRef: "composition:\(composition)",
                                                                   name: composition,
                                                                   properties: [Property(name: "nxc:mirror", value: lock.mirror),
                                                                                Property(name: "nxc:suite", value: lock.suite)])),
                           components: components)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return Array(try enc.encode(doc))
    }

    /// Percent-encoding of a purl version (`1:2.3+b1` → `1%3A2.3%2Bb1`).
    static func percentEncoded(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            let c = Character(UnicodeScalar(b))
            if c.isASCII && (c.isLetter || c.isNumber || "-._~".contains(c)) { out.append(c) }
            else { out += String(format: "%%%02X", b) }
        }
        return out
    }
}
