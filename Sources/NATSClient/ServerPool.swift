/// The servers a connection may use, in the order it tries them.
struct ServerPool: Sendable {
    private(set) var servers: [ServerAddress]

    init(urls: [String], randomize: Bool) throws(NATSError) {
        var servers: [ServerAddress] = []
        for url in urls {
            for part in url.split(separator: ",") where !part.trimmingWhitespace().isEmpty {
                servers.append(try ServerAddress(parsing: String(part)))
            }
        }
        guard !servers.isEmpty else { throw NATSError(.noServers, "no server URL given") }
        if randomize { servers.shuffle() }
        self.servers = servers
    }
}
