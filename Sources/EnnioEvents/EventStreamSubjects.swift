/// The JetStream stream that keeps every event: `ENNIO_EVENTS`, over the event categories'
/// subjects (not commands or queries), in files. Its name and subjects are part of the public
/// contract (`topics.md`); creating and using it over NATS is in `EventStream.swift`.
public enum EventStream {
    public static let name = "ENNIO_EVENTS"

    /// The subjects the stream captures: one wildcard per event category.
    public static var subjects: [String] {
        EventCategory.allCases.map { "\(EventSubject.prefix).\($0.rawValue).>" }
    }
}
