/// The subject families under `ennio.`: event categories, and the families that carry other
/// messages (commands, queries, metrics, dashboard updates), which are not events.
extension EventSubject {
    /// The second tokens under `ennio.` that carry no events, with what they carry.
    public static let nonEventFamilies: [String: String] = [
        "commands": "commands to node agents",
        "query": "queries to the coordinator",
        "metrics": "metrics",
        "dashboard": "dashboard updates",
    ]

    /// The family of a subject under `ennio.` that carries no events (`commands`, `query`,
    /// `metrics`, `dashboard`), or `nil` for any other subject.
    public static func nonEventFamily(of subject: String) -> String? {
        let tokens = subject.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
        guard tokens.count >= 2, tokens[0] == prefix, nonEventFamilies[String(tokens[1])] != nil else { return nil }
        return String(tokens[1])
    }

    /// The subjects of a category with their variable parts named: `ennio.ci.<project_id>.<action>`,
    /// `ennio.node.<host>.<action>`, `ennio.lifecycle.<action>`.
    public static func template(for category: EventCategory) -> String {
        switch category.scope {
        case .project: "\(prefix).\(category.rawValue).<project_id>.<action>"
        case .host: "\(prefix).\(category.rawValue).<host>.<action>"
        case .global: "\(prefix).\(category.rawValue).<action>"
        }
    }
}
