import Glibc

/// Fetches the deployment document from `nxc.deployment_url`, retrying.
enum DeploymentFetch {
    /// GETs `url` once a second until it succeeds or `budget` seconds have
    /// passed (at least one attempt is made). Logs each distinct failure
    /// once; the last one ends up in the error thrown.
    /// `sha256`: the document's SHA-256 (hex) from nxc.deployment_sha256; an answer with another
    /// one is refused like a failed GET (and retried: a forged answer may lose the next race).
    static func fetch(_ url: HTTPURL, budget: Int, sha256 expected: String?, log: Logger) throws -> [UInt8] {
        let start = Clock.now()
        let deadline = start + Double(budget)
        var reported: Set<String> = []
        var attempts = 0
        log.info("fetching the deployment from \(url) (nxc.deployment_url), retrying every second for up to \(budget) s")
        while true {
            attempts += 1
            do {
                let body = try HTTP.get(url, deadline: max(deadline, Clock.now() + 1))
                if let expected {
                    let actual = SHA256.hex(SHA256.hash(body))
                    guard actual == expected else {
                        throw HTTPError(description: "the answer's SHA-256 is \(actual), not \(expected) "
                            + "(nxc.deployment_sha256): refused")
                    }
                }
                let after = attempts == 1 ? "" : " at attempt \(attempts), after \(Int(Clock.now() - start)) s"
                let checked = expected == nil ? "" : ", SHA-256 as nxc.deployment_sha256 says"
                log.info("fetched the deployment from \(url): \(body.count) bytes\(checked)\(after)")
                return body
            } catch {
                let reason = "\(error)"
                let remaining = deadline - Clock.now()
                if (error as? HTTPError)?.permanent == true || remaining <= 0 {
                    throw AgentError.fetch(url: url.text, seconds: budget, attempts: attempts, reason: reason)
                }
                if reported.insert(reason).inserted {
                    log.warning("cannot fetch the deployment yet: \(reason); retrying every second "
                        + "(\(Int(remaining.rounded(.up))) s left)")
                }
                usleep(UInt32(min(1.0, remaining) * 1_000_000))
            }
        }
    }
}
