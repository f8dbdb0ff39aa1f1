/// One parsed HTTP/1.x request.
public struct HTTPRequest: Sendable, Hashable {
    /// `GET`, `HEAD`, …: case-sensitive, as HTTP says.
    public var method: String
    /// The request target as sent (`/api/events?project=a%20b`).
    public var target: String
    /// The path, percent-decoded (`/api/events`).
    public var path: String
    /// The query parameters, percent-decoded (`+` is a space), in order; a name may repeat.
    public var query: [QueryItem]
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public struct QueryItem: Sendable, Hashable {
        public var name: String
        public var value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    public init(
        method: String, target: String, minorVersion: Int = 1, headers: HTTPHeaders = [:], body: [UInt8] = []
    ) throws(HTTPError) {
        self.method = method
        self.target = target
        self.minorVersion = minorVersion
        self.headers = headers
        self.body = body
        (path, query) = try Self.split(target: target)
    }

    /// Whether the connection stays open after the response: HTTP/1.1 unless `Connection:
    /// close`, HTTP/1.0 only with `Connection: keep-alive`.
    public var keepAlive: Bool {
        if headers.contains("Connection", token: "close") { return false }
        return minorVersion >= 1 || headers.contains("Connection", token: "keep-alive")
    }

    /// The value of the query parameter `name`, if it appears (the first, if it repeats).
    public func queryValue(_ name: String) -> String? {
        query.first { $0.name == name }?.value
    }

    /// The path and query of an origin-form (`/p?q`) or absolute-form (`http://host/p?q`) target.
    static func split(target: String) throws(HTTPError) -> (String, [QueryItem]) {
        var bytes = Array(target.utf8)
        if bytes.first != UInt8(ascii: "/") {
            // absolute-form: scheme "://" authority path-abempty [ "?" query ]
            guard let schemeEnd = Self.find([0x3A, 0x2F, 0x2F], in: bytes) else {
                throw HTTPError(.malformedTarget, "the request target must start with / or be an absolute URL")
            }
            let afterAuthority = bytes[(schemeEnd + 3)...].firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") } ?? bytes.count
            let rest = bytes[afterAuthority...]
            bytes = rest.first == UInt8(ascii: "/") ? Array(rest) : [UInt8(ascii: "/")] + rest
        }
        let questionMark = bytes.firstIndex(of: UInt8(ascii: "?")) ?? bytes.count
        guard let path = PercentDecoding.decode(bytes[..<questionMark], plusIsSpace: false), !path.utf8.contains(0) else {
            throw HTTPError(.malformedTarget, "the path has a bad percent escape or is not UTF-8")
        }
        var items: [QueryItem] = []
        if questionMark < bytes.count {
            for pair in bytes[(questionMark + 1)...].split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
                let equals = pair.firstIndex(of: UInt8(ascii: "=")) ?? pair.endIndex
                guard let name = PercentDecoding.decode(pair[..<equals], plusIsSpace: true),
                    let value = PercentDecoding.decode(equals < pair.endIndex ? pair[(equals + 1)...] : [], plusIsSpace: true)
                else {
                    throw HTTPError(.malformedQuery, "the query string has a bad percent escape or is not UTF-8")
                }
                items.append(QueryItem(name: name, value: value))
            }
        }
        return (path, items)
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start..<(start + needle.count)].elementsEqual(needle) {
            return start
        }
        return nil
    }
}

/// `%XX` escapes in URLs (RFC 3986), and `+` for a space in query strings.
public enum PercentDecoding {
    /// The text `bytes` stand for, or `nil` for a bad escape or bytes that are not UTF-8.
    public static func decode(_ bytes: some Collection<UInt8>, plusIsSpace: Bool) -> String? {
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var iterator = bytes.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
                output.append(high << 4 | low)
            case UInt8(ascii: "+") where plusIsSpace:
                output.append(0x20)
            default:
                output.append(byte)
            }
        }
        return String(validating: output, as: UTF8.self)
    }

    /// `text` with every byte outside `A–Z a–z 0–9 - . _ ~` written as `%XX`.
    public static func encode(_ text: String) -> String {
        var output: [UInt8] = []
        for byte in text.utf8 {
            if isUnreserved(byte) {
                output.append(byte)
            } else {
                output.append(UInt8(ascii: "%"))
                output.append(hexDigits[Int(byte >> 4)])
                output.append(hexDigits[Int(byte & 0xF)])
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            true
        default: false
        }
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
