import EnnioEvents

/// `ennio topics`: the subject scheme, from the same table the libraries use.
enum TopicsCommand {
    static let help = """
        usage: ennio topics [--markdown]
               ennio topics check <subject-or-pattern>

        Prints every event type with its subject. --markdown prints topics.md instead.
        `check` validates one subject (or pattern with * and >): exit 0 if it follows the
        scheme, 1 if not, with the reason.
        """

    static func run(_ arguments: [String]) throws -> Int32 {
        switch arguments.first {
        case nil:
            printTable()
            return 0
        case "--markdown":
            guard arguments.count == 1 else { throw UsageError("--markdown takes no value") }
            print(TopicsDocument.markdown, terminator: "")
            return 0
        case "--help", "-h":
            print(help)
            return 0
        case "check":
            guard arguments.count == 2 else { throw UsageError("check takes exactly one subject") }
            return check(arguments[1])
        case let other?:
            throw UsageError("unexpected argument \(other.debugDescription)")
        }
    }

    static func printTable() {
        let rows = EventType.allCases.map { type in (type.name, type.rawValue, EventSubject.template(for: type)) }
        let nameWidth = rows.map(\.0.count).max() ?? 0
        let wireWidth = rows.map(\.1.count).max() ?? 0
        for (name, wire, subject) in rows {
            print(name.padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  "
                + wire.padding(toLength: wireWidth, withPad: " ", startingAt: 0) + "  " + subject)
        }
        print("")
        print("ennio.commands.<command>   ennio.metrics.<action>   ennio.dashboard.<action>")
    }

    /// Checks one subject or pattern: event subjects and patterns with ``EventPattern``, the
    /// families that carry no events (commands, queries, …) as `ennio.<family>.<name>`.
    static func check(_ subject: String) -> Int32 {
        let isPattern = subject.contains("*") || subject.contains(">")
        if let family = EventSubject.nonEventFamily(of: subject) {
            let tokens = subject.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            let role = family == "commands" ? "command" : family == "query" ? "query" : "action"
            do {
                guard tokens.count == 3 || (tokens.count == 2 && tokens[1] == ">") || (tokens.count == 3 && tokens[2] == ">") else {
                    throw SubjectSegmentError(
                        .wrongTokenCount, segment: subject, role: "subject",
                        reason: "\(family) subjects have 3 tokens (ennio.\(family).<\(role)>), this has \(tokens.count)")
                }
                if tokens[2] != "*", tokens[2] != ">" { try SubjectSegment.validate(tokens[2], role: role) }
            } catch {
                print("invalid: \(TerminalText(error))")
                return 1
            }
            let what = EventSubject.nonEventFamilies[family] ?? family
            print("valid \(family) \(isPattern ? "pattern" : "subject"): \(subject) (\(what), not events)")
            return 0
        }
        do {
            let pattern = try EventPattern(validating: subject)
            guard !isPattern, let parsed = EventSubject.parse(subject) else {
                print("valid pattern: \(pattern.subject)")
                return 0
            }
            var text = "valid event subject: category \(parsed.category.rawValue)"
            if let scope = parsed.scope { text += parsed.category.scope == .host ? ", host \(scope)" : ", project \(scope)" }
            text += ", action \(parsed.action)"
            if let type = parsed.eventType { text += " (\(type.name))" }
            print(text)
            return 0
        } catch {
            print("invalid: \(TerminalText(error))")
            return 1
        }
    }
}
