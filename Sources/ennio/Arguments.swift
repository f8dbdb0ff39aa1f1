import Foundation
import Glibc
import NATSClient

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
    ///   - connecting: the command connects to NATS, so it takes the shared connection options
    ///     too (``connectionOptionNames``).
    init(_ arguments: [String], options: Set<String>, flags: Set<String> = [], positionals names: [String] = [], command takesCommand: Bool = false, connecting: Bool = false) throws {
        let options = connecting ? options.union(Self.connectionOptionNames) : options
        let flags = connecting ? flags.union(Self.connectionFlagNames) : flags
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
        try measure(name, range: range, parse: Self.parseDuration, show: Self.describe, kind: "a duration with a unit, such as 500ms, 2s, 1.5m or 1h")
    }

    /// `--name` read by `parse` and checked against `range`; the errors say what `kind` of value
    /// was expected, or what the range is (each end shown by `show`).
    private func measure<Value: Comparable>(
        _ name: String, range: ClosedRange<Value>, parse: (String) -> Value?, show: (Value) -> String, kind: String
    ) throws -> Value? {
        guard let text = values[name] else { return nil }
        guard let value = parse(text) else {
            throw UsageError("--\(name) must be \(kind), not \(text.debugDescription)")
        }
        guard range.contains(value) else {
            throw UsageError("--\(name) must be from \(show(range.lowerBound)) to \(show(range.upperBound)), not \(text.debugDescription)")
        }
        return value
    }

    /// Reads a duration written as a number and a unit: `ms`, `s`, `m`, `h` or `d` (`500ms`,
    /// `2s`, `1.5m`, `1h`, `30d`). `nil` for anything else, a bare number included.
    static func parseDuration(_ text: String) -> Duration? {
        let units: [(suffix: String, nanoseconds: Double)] = [("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9), ("d", 86_400e9)]
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
        if milliseconds % 86_400_000 == 0 { return "\(milliseconds / 86_400_000)d" }
        if milliseconds % 3_600_000 == 0 { return "\(milliseconds / 3_600_000)h" }
        if milliseconds % 60_000 == 0 { return "\(milliseconds / 60_000)m" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(milliseconds)ms"
    }

    /// `--name` as a number of bytes: a whole number, alone or with a unit (`KB`, `MB`, `GB`,
    /// `TB` in powers of 1000; `KiB`, `MiB`, `GiB`, `TiB` in powers of 1024), within `range`.
    func byteCount(_ name: String, range: ClosedRange<Int64>) throws -> Int64? {
        try measure(name, range: range, parse: Self.parseByteCount, show: { "\($0)" }, kind: "a number of bytes, such as 1048576, 500MB or 1GiB")
    }

    /// Reads `1048576`, `500MB`, `1GiB`, …; `nil` for anything else (or a count past `Int64`).
    static func parseByteCount(_ text: String) -> Int64? {
        let units: [(suffix: String, factor: Int64)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40),
            ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("TB", 1_000_000_000_000), ("B", 1),
        ]
        let unit = units.first { text.hasSuffix($0.suffix) } ?? ("", 1)
        let number = text.dropLast(unit.suffix.count)
        guard !number.isEmpty, number.count <= 19, number.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int64(number) else { return nil }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: unit.factor)
        return overflow ? nil : bytes
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

    // MARK: - Connecting

    /// The options of every command that connects, named as the `nats` command names them.
    static let connectionOptionNames: Set<String> = ["server", "creds", "nkey", "tlscert", "tlskey", "tlsca", "user", "password", "token", "inbox-prefix"]
    static let connectionFlagNames: Set<String> = ["tlsfirst"]

    /// What `ennio --help` says about them.
    static let connectionHelp = """
        Connecting (every command that talks to NATS; the environment variable is used when the
        option is not given):
          --server URL[,URL…]   NATS_URL       servers (default nats://127.0.0.1:4222; tls:// for TLS)
          --creds FILE          NATS_CREDS     user JWT and NKEY seed (.creds file, as nsc writes it)
          --nkey FILE           NATS_NKEY      NKEY seed file of an NKEY user
          --tlsca FILE          NATS_CA        CA certificates to trust instead of the system's
          --tlscert FILE        NATS_CERT      client certificate (mutual TLS), with --tlskey
          --tlskey FILE         NATS_KEY       the client certificate's key
          --tlsfirst                           TLS handshake before the server's INFO (handshake_first)
          --user USER           NATS_USER      user and password
          --password PASSWORD   NATS_PASSWORD
          --token TOKEN         NATS_TOKEN     authentication token
          --inbox-prefix P      NATS_INBOX_PREFIX  where replies come (default _INBOX; a deployment's
                                               users each have their own, _INBOX.<user>)
        A password or token given on the command line is hidden from the process list as soon as
        ennio starts; the environment or a file keeps it out of the list altogether.
        """

    /// The option's value, else the environment variable's (unless unset or empty).
    private func value(_ name: String, environment variable: String) -> String? {
        if let value = values[name] { return value }
        guard let text = ProcessInfo.processInfo.environment[variable], !text.isEmpty else { return nil }
        return text
    }

    /// Options for connecting to the servers with the credentials and TLS these arguments and
    /// the environment give (`--server`/`NATS_URL`, `--creds`/`NATS_CREDS`, …).
    ///
    /// A password or token from the command line is overwritten in the process's argument
    /// memory, so that `ps` no longer shows it.
    func connectionOptions(name: String) throws -> NATSOptions {
        var options = NATSOptions(servers: servers())
        options.name = name
        options.user = value("user", environment: "NATS_USER")
        options.password = value("password", environment: "NATS_PASSWORD")
        options.token = value("token", environment: "NATS_TOKEN")
        let creds = value("creds", environment: "NATS_CREDS")
        let nkey = value("nkey", environment: "NATS_NKEY")
        switch (creds, nkey) {
        case (let creds?, nil): options.credentials = .credentialsFile(creds)
        case (nil, let nkey?): options.credentials = .nkeySeedFile(nkey)
        case (_?, _?): throw UsageError("--creds and --nkey name two different identities; give one")
        case (nil, nil): break
        }
        options.tls.caFile = value("tlsca", environment: "NATS_CA")
        options.tls.certificateFile = value("tlscert", environment: "NATS_CERT")
        options.tls.keyFile = value("tlskey", environment: "NATS_KEY")
        if (options.tls.certificateFile == nil) != (options.tls.keyFile == nil) {
            throw UsageError("--tlscert and --tlskey go together")
        }
        options.tls.handshakeFirst = flag("tlsfirst")
        if let prefix = value("inbox-prefix", environment: "NATS_INBOX_PREFIX") {
            let tokens = prefix.split(separator: ".", omittingEmptySubsequences: false)
            guard tokens.allSatisfy({ !$0.isEmpty && $0 != "*" && $0 != ">" && !$0.contains(where: { $0.isWhitespace || !$0.isASCII }) }) else {
                throw UsageError("--inbox-prefix must be a subject without wildcards, such as _INBOX.reader, not \(prefix.debugDescription)")
            }
            options.inboxPrefix = prefix
        }
        var secrets = [values["password"], values["token"]].compactMap { $0 }
        for url in values["server"].map({ $0.split(separator: ",").map(String.init) }) ?? [] {
            if let address = try? ServerAddress(parsing: url) { secrets += [address.password, address.token].compactMap { $0 } }
        }
        secrets.forEach(Self.hideFromProcessList)
        return options
    }

    /// Overwrites every occurrence of `secret` in the process's own argument strings with `*`:
    /// `ps` and `/proc/<pid>/cmdline` read that memory. (The arguments were copied into Swift
    /// strings before, so nothing here changes what the program sees.)
    static func hideFromProcessList(_ secret: String) {
        let needle = Array(secret.utf8)
        guard !needle.isEmpty else { return }
        for index in 1..<Int(CommandLine.argc) {
            guard let argument = CommandLine.unsafeArgv[index] else { continue }
            let length = strlen(argument)
            guard length >= needle.count else { continue }
            argument.withMemoryRebound(to: UInt8.self, capacity: length) { bytes in
                var start = 0
                while start + needle.count <= length {
                    if (0..<needle.count).allSatisfy({ bytes[start + $0] == needle[$0] }) {
                        for offset in 0..<needle.count { bytes[start + offset] = UInt8(ascii: "*") }
                        start += needle.count
                    } else {
                        start += 1
                    }
                }
            }
        }
    }
}
