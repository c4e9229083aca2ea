import Glibc

/// Options of `nxc-agent boot` and `nxc-agent whoami`.
struct BootOptions {
    var host: String?
    var deployment: String?
    /// Seconds to wait for the deployment's interfaces to appear.
    var linkTimeout = 30
    /// Seconds to keep trying to fetch nxc.deployment_url.
    var fetchTimeout = 120

    static func parse(_ arguments: [String]) throws -> BootOptions {
        var options = BootOptions()
        var index = 0
        func value(_ option: String) throws -> String {
            index += 1
            guard index < arguments.count else { throw AgentError.usage("\(option) needs a value") }
            return arguments[index]
        }
        while index < arguments.count {
            var argument = arguments[index]
            var inline: String?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                inline = String(argument[argument.index(after: equals)...])
                argument = String(argument[..<equals])
            }
            switch argument {
            case "--host":
                options.host = try inline ?? value(argument)
            case "--deployment":
                options.deployment = try inline ?? value(argument)
            case "--link-timeout":
                let text = try inline ?? value(argument)
                guard let seconds = Int(text), seconds >= 0, seconds <= 3600 else {
                    throw AgentError.usage("--link-timeout takes seconds between 0 and 3600, not \"\(text)\"")
                }
                options.linkTimeout = seconds
            case "--fetch-timeout":
                let text = try inline ?? value(argument)
                guard let seconds = Int(text), seconds >= 0, seconds <= 3600 else {
                    throw AgentError.usage("--fetch-timeout takes seconds between 0 and 3600, not \"\(text)\"")
                }
                options.fetchTimeout = seconds
            default:
                throw AgentError.usage("unknown argument \"\(arguments[index])\"")
            }
            index += 1
        }
        return options
    }
}
