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

    static func check(_ subject: String) -> Int32 {
        if subject.contains("*") || subject.contains(">") {
            do {
                let pattern = try EventPattern(validating: subject)
                print("valid pattern: \(pattern.subject)")
                return 0
            } catch {
                print("invalid: \(error)")
                return 1
            }
        }
        if let parsed = EventSubject.parse(subject) {
            var text = "valid event subject: category \(parsed.category.rawValue)"
            if let scope = parsed.scope { text += parsed.category.scope == .host ? ", host \(scope)" : ", project \(scope)" }
            text += ", action \(parsed.action)"
            if let type = parsed.eventType {
                text += " (\(type.name))"
            } else if parsed.category != .lifecycle {
                print("invalid: \(subject.debugDescription) has no event type with action \(parsed.action.debugDescription) in \(parsed.category.rawValue)")
                return 1
            }
            print(text)
            return 0
        }
        let tokens = subject.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        if tokens.count == 3, tokens[0] == EventSubject.prefix, ["commands", "metrics", "dashboard"].contains(tokens[1]) {
            do {
                try SubjectSegment.validate(tokens[2], role: tokens[1] == "commands" ? "command" : "action")
                print("valid \(tokens[1]) subject: \(tokens[2])")
                return 0
            } catch {
                print("invalid: \(error)")
                return 1
            }
        }
        for (index, token) in tokens.enumerated() where index > 0 {
            do {
                try SubjectSegment.validate(token, role: "segment \(index + 1)")
            } catch {
                print("invalid: \(error)")
                return 1
            }
        }
        print("invalid: \(subject.debugDescription) is not an ennio event subject (ennio.<category>.<project_id|host>.<action>)")
        return 1
    }
}
