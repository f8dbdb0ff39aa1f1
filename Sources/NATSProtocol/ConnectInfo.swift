/// The options a client sends in its `CONNECT` operation.
public struct ConnectInfo: Sendable, Hashable {
    public var verbose = false
    public var pedantic = false
    public var tlsRequired = false
    public var name: String?
    public var lang = "swift"
    public var version = "0.1.0"
    /// 1 means the client understands asynchronous `INFO` updates (cluster discovery).
    public var protocolVersion = 1
    public var headers = true
    public var noResponders = true
    public var echo = true
    public var user: String?
    public var password: String?
    public var authToken: String?
    /// The user's JWT (decentralised authentication).
    public var jwt: String?
    /// The user's NKEY public key (NKEY authentication without a JWT).
    public var nkey: String?
    /// The server's nonce signed with the user's NKEY, base64url without padding.
    public var signature: String?

    public init() {}

    /// The JSON object sent after `CONNECT `.
    public var json: String {
        var writer = JSONObjectWriter()
        writer.add("verbose", verbose)
        writer.add("pedantic", pedantic)
        writer.add("tls_required", tlsRequired)
        if let name { writer.add("name", name) }
        writer.add("lang", lang)
        writer.add("version", version)
        writer.add("protocol", protocolVersion)
        writer.add("headers", headers)
        writer.add("no_responders", noResponders)
        writer.add("echo", echo)
        if let user { writer.add("user", user) }
        if let password { writer.add("pass", password) }
        if let authToken { writer.add("auth_token", authToken) }
        if let jwt { writer.add("jwt", jwt) }
        if let nkey { writer.add("nkey", nkey) }
        if let signature { writer.add("sig", signature) }
        return writer.finish()
    }
}

/// Writes one flat JSON object; enough for `CONNECT` without Foundation.
struct JSONObjectWriter {
    private var text = "{"
    private var first = true

    private mutating func key(_ key: String) {
        if !first { text += "," }
        first = false
        appendQuoted(key)
        text += ":"
    }

    mutating func add(_ name: String, _ value: Bool) {
        key(name)
        text += value ? "true" : "false"
    }

    mutating func add(_ name: String, _ value: Int) {
        key(name)
        text += String(value)
    }

    mutating func add(_ name: String, _ value: String) {
        key(name)
        appendQuoted(value)
    }

    mutating func finish() -> String {
        text + "}"
    }

    private mutating func appendQuoted(_ value: String) {
        text += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                text.unicodeScalars.append(scalar)
            }
        }
        text += "\""
    }
}
