import Foundation

/// A command's arguments: `--name value` options, `--flag` switches and positionals.
/// Anything unexpected is a ``UsageError`` (exit code 2): an unknown option, a missing value, and
/// positionals beyond those the command names (none unless it names some), so that nothing a
/// user types is ignored.
struct Arguments {
    private(set) var positionals: [String] = []
    private var values: [String: String] = [:]
    private var switches: Set<String> = []

    /// - Parameter positionals: the names of the positional arguments the command takes, all
    ///   required (`["pattern"]`); more or fewer are a usage error.
    init(_ arguments: [String], options: Set<String>, flags: Set<String> = [], positionals names: [String] = []) throws {
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--" {
                positionals += arguments[index...]
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

    /// `--mode auto|core|jetstream`: `nil` for automatic (JetStream when the server has it).
    func durability() throws -> Bool? {
        switch values["mode"] ?? "auto" {
        case "auto": return nil
        case "core": return false
        case "jetstream": return true
        case let other: throw UsageError("--mode must be auto, core or jetstream, not \(other.debugDescription)")
        }
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
