import Glibc

/// One server to connect to, parsed from `nats://[user[:password]@]host[:port]`.
///
/// A URL with only a user part (`nats://s3cret@host`) carries a token. The scheme may be left
/// out (`host:port`, `host`); the port defaults to 4222. IPv6 hosts go in brackets.
public struct ServerAddress: Sendable, Hashable, CustomStringConvertible, CustomReflectable {
    public var host: String
    public var port: Int
    public var user: String?
    public var password: String?
    public var token: String?
    /// The URL said `tls://`: the connection must be secured with TLS.
    public var usesTLS = false
    /// The name the server's certificate must carry when it is not `host`: set for servers a
    /// cluster announces by IP address, which are checked against the name of the server
    /// that announced them (as nats.go does).
    var verificationHost: String?

    public static let defaultPort = 4222

    public init(host: String, port: Int = ServerAddress.defaultPort) {
        self.host = host
        self.port = port
    }

    /// Parses a server URL.
    /// - Throws: ``NATSError/Code/invalidURL`` for an unknown scheme, an empty host or a bad port.
    public init(parsing text: String) throws(NATSError) {
        // Errors quote the URL without its password or token.
        let url = Self.redacted(text)
        var rest = Substring(text.trimmingWhitespace())
        if let schemeEnd = rest.range(of: "://") {
            let scheme = rest[..<schemeEnd.lowerBound].lowercased()
            switch scheme {
            case "nats": break
            case "tls": usesTLS = true
            default: throw NATSError(.invalidURL, "unknown scheme '\(scheme)' in \(url.debugDescription)")
            }
            rest = rest[schemeEnd.upperBound...]
        }
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }

        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                user = percentDecoded(credentials[..<colon])
                password = percentDecoded(credentials[credentials.index(after: colon)...])
            } else if !credentials.isEmpty {
                token = percentDecoded(credentials)
            }
        }

        var hostPart = rest
        var portPart: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else {
                throw NATSError(.invalidURL, "unterminated IPv6 address in \(url.debugDescription)")
            }
            hostPart = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") { portPart = after.dropFirst() } else if !after.isEmpty {
                throw NATSError(.invalidURL, "unexpected text after the host in \(url.debugDescription)")
            }
        } else if let colon = rest.lastIndex(of: ":") {
            hostPart = rest[..<colon]
            portPart = rest[rest.index(after: colon)...]
        }
        guard !hostPart.isEmpty else { throw NATSError(.invalidURL, "no host in \(url.debugDescription)") }
        host = String(hostPart)
        port = Self.defaultPort
        if let portPart {
            guard let value = Int(portPart), (1...65535).contains(value) else {
                throw NATSError(.invalidURL, "bad port in \(url.debugDescription)")
            }
            port = value
        }
    }

    /// `nats://host:port` (or `tls://`), without credentials (safe to log).
    public var description: String {
        let scheme = usesTLS ? "tls" : "nats"
        return host.contains(":") ? "\(scheme)://[\(host)]:\(port)" : "\(scheme)://\(host):\(port)"
    }

    /// The address without password or token, for `dump` and debuggers.
    public var customMirror: Mirror {
        Mirror(self, children: ["host": host, "port": port, "user": user as Any, "usesTLS": usesTLS], displayStyle: .struct)
    }

    /// `text` with whatever stands before `@` in its authority replaced: the user of
    /// `user:password@` stays, a password or token becomes `***`.
    static func redacted(_ text: String) -> String {
        guard let at = text.lastIndex(of: "@") else { return text }
        let start = text.range(of: "://").map(\.upperBound) ?? text.startIndex
        guard start <= at else { return text }
        let credentials = text[start..<at]
        let kept = credentials.firstIndex(of: ":").map { credentials[..<$0] + ":***" } ?? "***"
        return String(text[..<start]) + kept + String(text[at...])
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> Substring {
        var slice = Substring(self)
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return slice
    }
}

/// Decodes `%XX` escapes, so credentials may hold `@`, `:` and `/`; other bytes stay as written.
private func percentDecoded(_ text: Substring) -> String {
    guard text.contains("%") else { return String(text) }
    let source = Array(text.utf8)
    var bytes: [UInt8] = []
    var index = 0
    while index < source.count {
        if source[index] == UInt8(ascii: "%"), index + 2 < source.count,
            let value = UInt8(String(decoding: source[(index + 1)...(index + 2)], as: UTF8.self), radix: 16)
        {
            bytes.append(value)
            index += 3
        } else {
            bytes.append(source[index])
            index += 1
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}

extension String {
    /// Whether this is an IPv4 or IPv6 address rather than a host name.
    var isIPAddress: Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, self, &v4) == 1 || inet_pton(AF_INET6, self, &v6) == 1
    }
}
