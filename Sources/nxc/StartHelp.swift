import ArgumentParser
import Foundation
import NXCDeploy
import NXCFlavours

/// `nxc start --help` for the options only some start methods take: a lead that says what the
/// option is, then what each method that takes it does with it (its `optionHelp`) and the flavours
/// that use that method. All of it comes from the registry and the flavour files on the search
/// path, so that the command line names no flavour or method itself.
enum StartHelp {
    static func help(_ feature: StartFeature, _ lead: String) -> ArgumentHelp {
        ArgumentHelp(text(feature, lead: lead, methods: Registry.startMethods, flavours: Flavour.all()))
    }

    /// The flavours that deploy onto reserved hosts, for `-m` and the SSH options.
    static func hosts(_ lead: String) -> ArgumentHelp {
        let names = Flavour.all().filter { $0.startMethod.bindsHosts }.map(\.name)
        return ArgumentHelp(names.isEmpty ? lead + "." : "\(lead), for \(names.joined(separator: ", ")).")
    }

    static func text(_ feature: StartFeature, lead: String, methods: [any StartMethod], flavours: [Flavour]) -> String {
        var parts: [String] = []
        for m in methods {
            guard let what = m.optionHelp[feature] else { continue }
            let using = flavours.filter { f in f.start == m.name && (m.featureKinds[feature]?.contains(f.artefact) ?? true) }.map(\.name)
            guard !using.isEmpty else { continue }
            parts.append("\(what) (\(using.joined(separator: ", ")))")
        }
        return parts.isEmpty ? lead + "." : lead + ": " + parts.joined(separator: "; ") + "."
    }
}
