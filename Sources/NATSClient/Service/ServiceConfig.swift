/// Which queue group an endpoint's subscription joins.
public enum ServiceQueueGroup: Sendable, Hashable {
    /// The group's, else the service's, else `q`.
    case inherited
    case named(String)
    /// No queue group: every instance of the service gets every request.
    case disabled
}

/// A service's identity and defaults (ADR-32).
public struct ServiceConfig: Sendable {
    /// The kind of service, shared by all its instances: `[A-Za-z0-9_-]+`.
    public var name: String
    /// A semantic version.
    public var version: String
    public var description: String
    /// Free-form facts about this instance, fixed once the service exists.
    public var metadata: [String: String]
    /// The default queue group of its endpoints (`q` unless set).
    public var queueGroup: ServiceQueueGroup = .inherited
    /// Where the discovery subjects live: `$SRV` unless set (for access across accounts).
    public var apiPrefix = "$SRV"
    /// Extra data for an endpoint's statistics (the `data` field), as JSON.
    public var statisticsData: (@Sendable (_ endpoint: String) -> (any Encodable & Sendable)?)?

    public init(name: String, version: String, description: String = "", metadata: [String: String] = [:]) {
        self.name = name
        self.version = version
        self.description = description
        self.metadata = metadata
    }

    /// The queue group services use unless told otherwise.
    public static let defaultQueueGroup = "q"
}

/// What makes a valid service name, version and subject.
enum ServiceNames {
    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }
    }

    /// A semantic version 2.0.0: `MAJOR.MINOR.PATCH[-prerelease][+build]`, numbers without
    /// leading zeros, identifiers of `[0-9A-Za-z-]`, numeric prerelease identifiers without
    /// leading zeros.
    static func isValidVersion(_ version: String) -> Bool {
        var rest = Substring(version)
        var build: Substring?
        if let plus = rest.firstIndex(of: "+") {
            build = rest[rest.index(after: plus)...]
            rest = rest[..<plus]
        }
        var prerelease: Substring?
        if let dash = rest.firstIndex(of: "-") {
            prerelease = rest[rest.index(after: dash)...]
            rest = rest[..<dash]
        }
        let core = rest.split(separator: ".", omittingEmptySubsequences: false)
        guard core.count == 3, core.allSatisfy(isNumber) else { return false }
        if let prerelease {
            let identifiers = prerelease.split(separator: ".", omittingEmptySubsequences: false)
            guard identifiers.allSatisfy({ isIdentifier($0) && (!$0.allSatisfy(\.isASCIIDigit) || isNumber($0)) }) else { return false }
        }
        if let build {
            guard build.split(separator: ".", omittingEmptySubsequences: false).allSatisfy(isIdentifier) else { return false }
        }
        return true
    }

    private static func isNumber(_ text: Substring) -> Bool {
        !text.isEmpty && text.allSatisfy(\.isASCIIDigit) && (text.count == 1 || text.first != "0")
    }

    private static func isIdentifier(_ text: Substring) -> Bool {
        !text.isEmpty && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
