/// systemd unit names: the one rule that `nxc check`, the build's service check and the agent share.
public enum UnitName {
    /// Unit types systemd knows; a name ending in `.TYPE` is a unit name as it is.
    public static let types: Set<String> = [
        "service", "socket", "target", "timer", "path", "mount", "automount", "swap", "slice", "scope", "device",
    ]

    /// `nginx` → `nginx.service`; `ssh.socket` stays; `php8.2-fpm` → `php8.2-fpm.service` (a dot does not
    /// make a unit type). Nil for a name systemd would refuse, or one that could pass for an option
    /// (`-H`), a path (`a/b`, `.x`) or a shell word (`a;b`), and for a template without its instance.
    public static func normalize(_ service: String) -> String? {
        let allowed = service.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: ":"), UInt8(ascii: "-"),
                 UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "@"), UInt8(ascii: "\\"):
                return true
            default:
                return false
            }
        }
        guard allowed, let first = service.utf8.first, first != UInt8(ascii: "-"), first != UInt8(ascii: "."),
              first != UInt8(ascii: "@") else { return nil }
        var unit = service + ".service"
        if let dot = service.utf8.lastIndex(of: UInt8(ascii: ".")) {
            let suffix = String(decoding: service.utf8[service.utf8.index(after: dot)...], as: UTF8.self)
            if types.contains(suffix) { unit = service }
        }
        // A template (`getty@.service`) is no unit to start: it needs an instance (`getty@tty1`).
        let stem = unit.utf8[..<(unit.utf8.lastIndex(of: UInt8(ascii: ".")) ?? unit.utf8.endIndex)]
        guard !stem.isEmpty, stem.last != UInt8(ascii: "@") else { return nil }
        return unit.utf8.count <= 255 ? unit : nil
    }

    /// Why `normalize` refuses `service`, in words for an error message; nil when it does not.
    public static func problem(_ service: String) -> String? {
        guard normalize(service) == nil else { return nil }
        let u = Array(service.utf8)
        if let at = u.lastIndex(of: UInt8(ascii: "@")) {
            // With an instance after the '@' it would be a unit: it is a template.
            let withInstance = String(decoding: u[...at] + Array("x".utf8) + u[(at + 1)...], as: UTF8.self)
            if normalize(withInstance) != nil { return "is a template; name an instance of it (e.g. getty@tty1)" }
        }
        if u.count > 240 { return "is too long for a systemd unit name (255 characters with its type)" }
        return "is not a systemd unit name (such as nginx, ssh.socket or getty@tty1: ASCII letters, digits and "
            + "':-_.@\\' only, not starting with '-', '.' or '@')"
    }

    /// The template a unit instance comes from (`getty@tty1.service` → `getty@.service`), nil for
    /// a unit that is not an instance.
    public static func template(of unit: String) -> String? {
        let u = Array(unit.utf8)
        guard let at = u.firstIndex(of: UInt8(ascii: "@")), let dot = u.lastIndex(of: UInt8(ascii: ".")), at < dot,
              at + 1 < dot else { return nil }
        return String(decoding: u[...at], as: UTF8.self) + String(decoding: u[dot...], as: UTF8.self)
    }
}
