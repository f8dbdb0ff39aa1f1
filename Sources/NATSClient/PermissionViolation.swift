/// What a server's `-ERR 'Permissions Violation …'` refused, read from its text, so that the
/// refusal can be handed to the operation that caused it.
///
/// nats-server words them (`server/client.go`), with the subjects quoted as Go's `%q` does:
///
///     Permissions Violation for Publish to "<subject>"
///     Permissions Violation for Publish with Reply of "<reply>"
///     Permissions Violation for Subscription to "<subject>"
///     Permissions Violation for Subscription to "<subject>" using queue "<queue>"
///     Permissions Violation for Subscription to "<subject>", too many tokens
///
/// Any other text (another server's wording, a quoted subject with escapes other than `\"`
/// and `\\`) reads as `nil`: the violation is then only reported as a connection event.
struct PermissionViolation: Sendable, Hashable {
    enum Kind: Sendable, Hashable {
        /// Publishing to `subject` was refused.
        case publish
        /// Publishing with `subject` as the reply subject was refused.
        case publishReply
        /// Subscribing to `subject` (in `queueGroup`, if any) was refused.
        case subscription
    }

    let kind: Kind
    let subject: String
    let queueGroup: String?

    init(kind: Kind, subject: String, queueGroup: String? = nil) {
        self.kind = kind
        self.subject = subject
        self.queueGroup = queueGroup
    }

    /// Reads the text of a `-ERR` (with or without its single quotes).
    init?(serverError text: String) {
        var rest = Substring(text)
        if rest.hasPrefix("'"), rest.hasSuffix("'"), rest.count >= 2 { rest = rest.dropFirst().dropLast() }
        let kinds: [(prefix: String, kind: Kind)] = [
            ("Permissions Violation for Publish with Reply of ", .publishReply),
            ("Permissions Violation for Publish to ", .publish),
            ("Permissions Violation for Subscription to ", .subscription),
        ]
        guard let match = kinds.first(where: { rest.hasPrefix($0.prefix) }) else { return nil }
        rest = rest.dropFirst(match.prefix.count)
        guard let subject = Self.quoted(&rest) else { return nil }
        var queueGroup: String?
        if match.kind == .subscription, rest.hasPrefix(" using queue ") {
            rest = rest.dropFirst(" using queue ".count)
            guard let queue = Self.quoted(&rest) else { return nil }
            queueGroup = queue
        }
        if match.kind == .subscription, rest == ", too many tokens" { rest = "" }
        guard rest.isEmpty else { return nil }
        self.init(kind: match.kind, subject: subject, queueGroup: queueGroup)
    }

    /// Takes a double-quoted string off the front of `text`, undoing `\"` and `\\`.
    private static func quoted(_ text: inout Substring) -> String? {
        guard text.first == "\"" else { return nil }
        var result = ""
        var index = text.index(after: text.startIndex)
        while index < text.endIndex {
            let character = text[index]
            index = text.index(after: index)
            switch character {
            case "\"":
                text = text[index...]
                return result
            case "\\":
                guard index < text.endIndex, text[index] == "\"" || text[index] == "\\" else { return nil }
                result.append(text[index])
                index = text.index(after: index)
            default:
                result.append(character)
            }
        }
        return nil
    }
}
