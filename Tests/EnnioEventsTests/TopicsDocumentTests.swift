import EnnioEvents
import Foundation
@testable import NATSTestSupport
import Testing

@Suite struct TopicsDocumentTests {
    @Test func topicsMarkdownIsWhatTheCodeGenerates() throws {
        let root = try #require(repositoryRoot())
        let committed = try String(contentsOfFile: root + "/topics.md", encoding: .utf8)
        #expect(
            committed == TopicsDocument.markdown,
            "topics.md is stale: run `swift run ennio topics --markdown > topics.md`")
    }

    @Test func theDocumentListsEveryTypeAndAnExamplePerCategory() throws {
        let text = TopicsDocument.markdown
        for type in EventType.allCases {
            #expect(text.contains("| \(type.name) | `\(type.rawValue)` |"))
        }
        for category in EventCategory.allCases {
            let example = TopicsDocument.example(for: category)
            #expect(example.event.eventType.category == category)
            #expect(text.contains(example.event.jsonString))
            #expect(EventSubject.belongs(example.event, on: example.subject))
            #expect(try Event(json: example.event.jsonString) == example.event)
        }
    }
}
