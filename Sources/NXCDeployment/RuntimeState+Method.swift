import Foundation

/// A JSON value as it is, for what a start method keeps in the state in a shape only it knows.
public indirect enum JSONValue: Codable, Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let n): try c.encode(n)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }
}

/// What a start method keeps of its own: a Codable of its own type, stored in state.json under the
/// method's name (`"methods": {"docker": {…}}`), so that the shared record does not grow a field
/// per method.
extension RuntimeState {
    /// The method's own state as `type`; nil when it kept none (or it does not decode).
    public func own<T: Decodable>(_ type: T.Type) -> T? {
        // State files of nxc before `methods` kept docker's at the top level (`project`); only
        // docker ever wrote that key, and no other method's type decodes from it.
        guard let value = methods?[startMethod] ?? project else { return nil }
        guard let data = try? JSONEncoder().encode(value) else { return nil }
        return try? JSONDecoder().decode(T.self, from: data)
    }

    /// Keeps `value` as the method's own state.
    public mutating func setOwn<T: Encodable>(_ value: T) throws {
        let data = try JSONEncoder().encode(value)
        var all = methods ?? [:]
        all[startMethod] = try JSONDecoder().decode(JSONValue.self, from: data)
        methods = all
        project = nil
    }
}
