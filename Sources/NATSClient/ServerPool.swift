/// The servers a connection may use, in the order it tries them, with what it knows of each.
///
/// Seed URLs are shuffled unless told not to. Servers the cluster announces in `connect_urls`
/// join the pool (with the credentials of the seed that worked). Each failed attempt counts
/// against the server; one that reaches the maximum leaves the pool. A server that refuses the
/// credentials twice in a row leaves it too (as in nats.go): they will not change by retrying.
///
/// Time is an input: instants are the connection's clock (time since it was made).
struct ServerPool: Sendable {
    struct Entry: Sendable {
        var address: ServerAddress
        var discovered: Bool
        var failedAttempts = 0
        var lastAttempt: Duration?
        /// Refusals of the credentials since the last success.
        var authorizationFailures = 0
    }

    private(set) var entries: [Entry]
    let randomize: Bool

    init(urls: [String], randomize: Bool) throws(NATSError) {
        var entries: [Entry] = []
        for url in urls {
            for part in url.split(separator: ",") where !part.trimmingWhitespace().isEmpty {
                entries.append(Entry(address: try ServerAddress(parsing: String(part)), discovered: false))
            }
        }
        guard !entries.isEmpty else { throw NATSError(.noServers, "no server URL given") }
        if randomize { entries.shuffle() }
        self.entries = entries
        self.randomize = randomize
    }

    var servers: [ServerAddress] { entries.map(\.address) }

    /// Adds announced servers not yet in the pool; returns the ones added.
    mutating func addDiscovered(_ urls: [String], credentialsFrom template: ServerAddress?) -> [ServerAddress] {
        var added: [ServerAddress] = []
        for url in urls {
            guard var address = try? ServerAddress(parsing: url) else { continue }
            if entries.contains(where: { $0.address.host == address.host && $0.address.port == address.port }) { continue }
            if added.contains(where: { $0.host == address.host && $0.port == address.port }) { continue }
            address.user = template?.user
            address.password = template?.password
            address.token = template?.token
            // A cluster reached over TLS is reached over TLS at every node; one announced by
            // IP address is checked against the name of the server that announced it.
            if let template, template.usesTLS {
                address.usesTLS = true
                let templateName = template.verificationHost ?? template.host
                if address.host.isIPAddress, !templateName.isIPAddress { address.verificationHost = templateName }
            }
            added.append(address)
        }
        guard !added.isEmpty else { return [] }
        var fresh = added.map { Entry(address: $0, discovered: true) }
        if randomize { fresh.shuffle() }
        entries += fresh
        return added
    }

    /// The server to try next when reconnecting: the head of the pool, which then moves to the
    /// back. Servers that used up `maximumAttempts` (negative: unlimited) are dropped.
    mutating func nextForReconnect(maximumAttempts: Int) -> Entry? {
        while !entries.isEmpty {
            let entry = entries.removeFirst()
            if maximumAttempts >= 0, entry.failedAttempts >= maximumAttempts { continue }
            entries.append(entry)
            return entry
        }
        return nil
    }

    /// Moves `address` to the back of the pool, so the next attempt goes elsewhere first.
    mutating func moveToBack(_ address: ServerAddress) {
        guard let index = index(of: address) else { return }
        entries.append(entries.remove(at: index))
    }

    /// The server `nextForReconnect` would return, without moving it.
    func peekNext(maximumAttempts: Int) -> Entry? {
        entries.first { maximumAttempts < 0 || $0.failedAttempts < maximumAttempts }
    }

    mutating func recordAttempt(_ address: ServerAddress, at instant: Duration) {
        guard let index = index(of: address) else { return }
        entries[index].lastAttempt = instant
    }

    mutating func recordFailure(_ address: ServerAddress) {
        guard let index = index(of: address) else { return }
        entries[index].failedAttempts += 1
    }

    mutating func recordSuccess(_ address: ServerAddress) {
        guard let index = index(of: address) else { return }
        entries[index].failedAttempts = 0
        entries[index].authorizationFailures = 0
    }

    /// Counts a refusal of the credentials; the second in a row removes the server. Returns
    /// whether it was removed.
    mutating func recordAuthorizationFailure(_ address: ServerAddress) -> Bool {
        guard let index = index(of: address) else { return false }
        entries[index].authorizationFailures += 1
        guard entries[index].authorizationFailures >= 2 else { return false }
        entries.remove(at: index)
        return true
    }

    /// The entry for `address`'s host and port (the server connected to may differ in scheme:
    /// a `nats://` seed secured because the server required TLS is reported as `tls://`).
    private func index(of address: ServerAddress) -> Int? {
        entries.firstIndex { $0.address.host == address.host && $0.address.port == address.port }
    }
}
