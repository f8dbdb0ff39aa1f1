import Foundation

/// A command's arguments: `--name value` options, `--flag` switches and positionals.
/// Anything unexpected is a ``UsageError`` (exit code 2): an unknown option, a missing value, and
/// positionals beyond those the command names (none unless it names some), so that nothing a
/// user types is ignored.
struct Arguments {
    private(set) var positionals: [String] = []
    /// With `command: true`, everything after `--`: a command line to run, not counted as
    /// positionals.
    private(set) var command: [String] = []
    private var values: [String: String] = [:]
    private var switches: Set<String> = []

    /// - Parameters:
    ///   - positionals: the names of the positional arguments the command takes, all required
    ///     (`["pattern"]`); more or fewer are a usage error.
    ///   - command: whether the command takes a command line after `--` (``command``).
    init(_ arguments: [String], options: Set<String>, flags: Set<String> = [], positionals names: [String] = [], command takesCommand: Bool = false) throws {
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--" {
                if takesCommand {
                    command = Array(arguments[index...])
                } else {
                    positionals += arguments[index...]
                }
                break
            }
            guard argument.hasPrefix("--"), argument.count > 2 else {
                positionals.append(argument)
                continue
            }
            var name = String(argument.dropFirst(2))
            var inlineValue: String?
            if let equals = name.firstIndex(of: "=") {
                inlineValue = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            if flags.contains(name) {
                guard inlineValue == nil else { throw UsageError("--\(name) takes no value") }
                switches.insert(name)
            } else if options.contains(name) {
                if let inlineValue {
                    values[name] = inlineValue
                } else {
                    guard index < arguments.count else { throw UsageError("--\(name) needs a value") }
                    values[name] = arguments[index]
                    index += 1
                }
            } else {
                throw UsageError("unknown option --\(name)")
            }
        }
        if positionals.count > names.count {
            throw UsageError("unexpected argument \(positionals[names.count].debugDescription)")
        }
        if positionals.count < names.count {
            throw UsageError("missing \(names[positionals.count])")
        }
    }

    func value(_ name: String) -> String? { values[name] }

    func flag(_ name: String) -> Bool { switches.contains(name) }

    func required(_ name: String) throws -> String {
        guard let value = values[name] else { throw UsageError("--\(name) is required") }
        return value
    }

    func integer(_ name: String, range: ClosedRange<Int> = 0...Int.max) throws -> Int? {
        guard let text = values[name] else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw UsageError("--\(name) must be a whole number in \(range.lowerBound)...\(range.upperBound), not \(text.debugDescription)")
        }
        return value
    }

    func seconds(_ name: String) throws -> Duration? {
        guard let text = values[name] else { return nil }
        guard let value = Double(text), value > 0, value < 86_400 else {
            throw UsageError("--\(name) must be a number of seconds (> 0), not \(text.debugDescription)")
        }
        return .milliseconds(Int64(value * 1000))
    }

    /// `--name` as a duration with its unit (see ``parseDuration(_:)``), within `range`.
    func duration(_ name: String, range: ClosedRange<Duration> = .milliseconds(1) ... .seconds(86_400)) throws -> Duration? {
        guard let text = values[name] else { return nil }
        guard let value = Self.parseDuration(text) else {
            throw UsageError("--\(name) must be a duration with a unit, such as 500ms, 2s, 1.5m or 1h, not \(text.debugDescription)")
        }
        guard range.contains(value) else {
            throw UsageError("--\(name) must be from \(Self.describe(range.lowerBound)) to \(Self.describe(range.upperBound)), not \(text.debugDescription)")
        }
        return value
    }

    /// Reads a duration written as a number and a unit: `ms`, `s`, `m` or `h` (`500ms`, `2s`,
    /// `1.5m`, `1h`). `nil` for anything else, a bare number included.
    static func parseDuration(_ text: String) -> Duration? {
        let units: [(suffix: String, nanoseconds: Double)] = [("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
        guard let unit = units.first(where: { text.hasSuffix($0.suffix) }) else { return nil }
        let number = text.dropLast(unit.suffix.count)
        let parts = number.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), number.count <= 12,
              parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }),
              let value = Double(number)
        else { return nil }
        return .nanoseconds(Int64((value * unit.nanoseconds).rounded()))
    }

    /// A duration the way ``parseDuration(_:)`` reads them, in the largest unit that is exact.
    static func describe(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        if milliseconds % 3_600_000 == 0 { return "\(milliseconds / 3_600_000)h" }
        if milliseconds % 60_000 == 0 { return "\(milliseconds / 60_000)m" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(milliseconds)ms"
    }

    /// `--mode auto|core|jetstream`: `nil` for automatic (JetStream when the server has it).
    func durability() throws -> Bool? {
        switch values["mode"] ?? "auto" {
        case "auto": return nil
        case "core": return false
        case "jetstream": return true
        case let other: throw UsageError("--mode must be auto, core or jetstream, not \(other.debugDescription)")
        }
    }

    /// `--replicas N`: the event stream's copies (1 to 5, JetStream's limit), or `nil`.
    func replicas() throws -> Int? {
        try integer("replicas", range: 1...5)
    }

    /// `NATS_URL`, unless unset or empty.
    static var environmentServers: String? {
        guard let text = ProcessInfo.processInfo.environment["NATS_URL"], !text.isEmpty else { return nil }
        return text
    }

    /// The server URLs: `--server` (comma-separated), else `NATS_URL`, else the local default.
    func servers() -> [String] {
        let text = values["server"] ?? Self.environmentServers ?? "nats://127.0.0.1:4222"
        return text.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}
