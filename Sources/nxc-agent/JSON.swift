import CJansson

/// One parsed JSON document. jansson counts references to its values: this
/// class owns the reference to the root and drops it in `deinit`. Values
/// taken from the document are borrowed pointers, so each `JSONValue` keeps
/// its document alive and no pointer outlives the tree it points into.
final class JSONDocument {
    /// Where the text came from, for error messages ("/etc/nxc/composition.json").
    let origin: String
    fileprivate let handle: UnsafeMutablePointer<json_t>

    /// Parses `bytes`; duplicate keys are an error (which one would win is
    /// not something a deployer should have to guess).
    init(bytes: [UInt8], origin: String) throws {
        self.origin = origin
        var error = json_error_t()
        let parsed: UnsafeMutablePointer<json_t>? = bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return nil }
            return json_loadb(base.assumingMemoryBound(to: CChar.self), raw.count, Int(JSON_REJECT_DUPLICATES), &error)
        }
        guard let parsed else {
            if bytes.isEmpty { throw AgentError.json(origin: origin, line: 1, column: 0, message: "empty document") }
            let message = withUnsafeBytes(of: error.text) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            throw AgentError.json(origin: origin, line: Int(error.line), column: Int(error.column), message: message)
        }
        handle = parsed
    }

    deinit { nxc_json_decref(handle) }

    /// The top-level value.
    var root: JSONValue { JSONValue(document: self, handle: handle, key: "") }
}

/// A value inside a `JSONDocument`, with the dotted key that leads to it
/// ("nodes.server.interfaces[0].mac") so errors name it.
struct JSONValue {
    fileprivate let document: JSONDocument
    fileprivate let handle: UnsafeMutablePointer<json_t>
    /// The path of keys and indices from the root; empty for the root.
    let key: String

    var isObject: Bool { nxc_json_is_object(handle) != 0 }
    var isArray: Bool { nxc_json_is_array(handle) != 0 }
    var isString: Bool { nxc_json_is_string(handle) != 0 }

    /// "object", "array", "string", ... for messages.
    var kind: String {
        switch handle.pointee.type {
        case JSON_OBJECT: return "an object"
        case JSON_ARRAY: return "an array"
        case JSON_STRING: return "a string"
        case JSON_INTEGER: return "an integer"
        case JSON_REAL: return "a number"
        case JSON_TRUE, JSON_FALSE: return "a boolean"
        default: return "null"
        }
    }

    /// The string, if this is one.
    var string: String? {
        guard isString, let text = json_string_value(handle) else { return nil }
        return String(cString: text)
    }

    /// The integer, if this is one (1.0 is a real, not an integer).
    var integer: Int? {
        guard handle.pointee.type == JSON_INTEGER else { return nil }
        return Int(exactly: json_integer_value(handle))
    }

    /// The value of `name`, if this is an object that has it.
    func member(_ name: String) -> JSONValue? {
        guard isObject, let child = json_object_get(handle, name) else { return nil }
        return JSONValue(document: document, handle: child, key: key.isEmpty ? name : key + "." + name)
    }

    /// The elements, if this is an array.
    var elements: [JSONValue]? {
        guard isArray else { return nil }
        return (0..<json_array_size(handle)).compactMap { index in
            json_array_get(handle, index).map {
                JSONValue(document: document, handle: $0, key: "\(key)[\(index)]")
            }
        }
    }

    /// The members in document order, if this is an object.
    var members: [(name: String, value: JSONValue)]? {
        guard isObject else { return nil }
        var result: [(name: String, value: JSONValue)] = []
        var iterator = json_object_iter(handle)
        while let current = iterator {
            if let name = json_object_iter_key(current), let child = json_object_iter_value(current) {
                let text = String(cString: name)
                result.append((text, JSONValue(document: document, handle: child,
                                               key: key.isEmpty ? text : key + "." + text)))
            }
            iterator = json_object_iter_next(handle, current)
        }
        return result
    }

    /// An error about this value.
    func invalid(_ message: String) -> AgentError {
        .invalid(origin: document.origin, key: key, message: message)
    }

    // Typed access to members: absent is nil, present with the wrong type throws.

    func optionalString(_ name: String) throws -> String? {
        guard let value = member(name) else { return nil }
        guard let text = value.string else { throw value.invalid("must be a string, not \(value.kind)") }
        return text
    }

    func requiredString(_ name: String) throws -> String {
        guard let text = try optionalString(name) else { throw invalid("missing key \"\(name)\"") }
        return text
    }

    func optionalArray(_ name: String) throws -> [JSONValue]? {
        guard let value = member(name) else { return nil }
        guard let items = value.elements else { throw value.invalid("must be an array, not \(value.kind)") }
        return items
    }

    func optionalStrings(_ name: String) throws -> [String]? {
        try optionalArray(name)?.map { item in
            guard let text = item.string else { throw item.invalid("must be a string, not \(item.kind)") }
            return text
        }
    }

    func requiredObject(_ name: String) throws -> JSONValue {
        guard let value = member(name) else { throw invalid("missing key \"\(name)\"") }
        guard value.isObject else { throw value.invalid("must be an object, not \(value.kind)") }
        return value
    }
}
