import EnnioEvents
import Testing

/// Text from the wire cannot forge a log line or drive the terminal of whoever watches
/// (issue 14, "Output that cannot be forged").
@Suite struct TerminalTextTests {
    static let hostile: [(String, String)] = [
        ("two\nlines", #"two\nlines"#),
        ("carriage\rreturn", #"carriage\rreturn"#),
        ("tab\there", #"tab\there"#),
        ("\u{1B}[2J cleared", #"\u{1B}[2J cleared"#),
        ("nul\u{0}byte", #"nul\u{0}byte"#),
        ("bell\u{7}", #"bell\u{7}"#),
        ("del\u{7F}", #"del\u{7F}"#),
        ("c1 csi \u{9B}31m", #"c1 csi \u{9B}31m"#),
        ("line\u{2028}separator", #"line\u{2028}separator"#),
        ("paragraph\u{2029}separator", #"paragraph\u{2029}separator"#),
        ("bidi \u{202E}txt.exe", #"bidi \u{202E}txt.exe"#),
        ("isolate \u{2066}x\u{2069}", #"isolate \u{2066}x\u{2069}"#),
        ("zero\u{200B}width", #"zero\u{200B}width"#),
        ("bom\u{FEFF}", #"bom\u{FEFF}"#),
    ]

    @Test(arguments: hostile)
    func controlAndFormatCharactersAreShownVisibly(text: String, shown: String) {
        let escaped = TerminalText(text).description
        #expect(escaped == shown)
        #expect(escaped.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value != 0x7F && !(0x80..<0xA0).contains($0.value) })
        #expect(LogText(text).description == shown)
        #expect(TerminalText(bytes: Array(text.utf8)).description == shown)
    }

    @Test func printableTextOfEveryScriptIsKept() {
        for text in ["plain ASCII: {\"json\":[1,2]} ~!@#$%^&*()", "ünïcödé", "日本語のメッセージ", "emoji 🎉", "Ελληνικά", "עברית", "a\\nb literal backslash"] {
            #expect(TerminalText(text).description == text)
        }
    }

    @Test func invalidUTF8IsShownByteByByte() {
        #expect(TerminalText(bytes: [0x61, 0xFF, 0x62]).description == #"a\xFFb"#)
        #expect(TerminalText(bytes: [0xC3]).description == #"\xC3"#)  // a sequence cut short
        #expect(TerminalText(bytes: [0xC0, 0xAF]).description == #"\xC0\xAF"#)  // overlong '/'
        #expect(TerminalText(bytes: [0xED, 0xA0, 0x80]).description == #"\xED\xA0\x80"#)  // a surrogate
        #expect(TerminalText(bytes: [0xF4, 0x90, 0x80, 0x80]).description == #"\xF4\x90\x80\x80"#)  // above U+10FFFF
        #expect(TerminalText(bytes: Array("é".utf8) + [0x80] + Array("ü".utf8)).description == #"é\x80ü"#)
        #expect(TerminalText(bytes: [0x1B, 0x5B, 0x32, 0x4A, 0x0A, 0x00]).description == #"\u{1B}[2J\n\u{0}"#)
    }

    @Test func escapingTwiceChangesNothing() {
        for (text, _) in Self.hostile {
            let once = TerminalText(text).description
            #expect(TerminalText(once).description == once)
        }
        let bytes: [UInt8] = [0xFF, 0x0A, 0x41]
        let once = TerminalText(bytes: bytes).description
        #expect(TerminalText(once).description == once)
    }

    @Test func aLimitKeepsABoundedPrefixAndSaysHowMuchWasLeftOut() {
        let digits = String(repeating: "7", count: 500_000)
        let shown = LogText(digits).description
        #expect(shown.utf8.count < LogText.limit + 40)
        #expect(shown.hasPrefix(String(repeating: "7", count: LogText.limit)))
        #expect(shown.hasSuffix("… (\(500_000 - LogText.limit) more bytes)"))
        // A character the limit would cut is left out whole.
        #expect(TerminalText("aé", limit: 2).description == "a… (2 more bytes)")
        #expect(TerminalText("short", limit: 100).description == "short")
        #expect(TerminalText("exact", limit: 5).description == "exact")
    }

    @Test func anErrorIsQuotedEscapedAndBounded() {
        struct Hostile: Error, CustomStringConvertible {
            var description: String { "bad\nline \u{1B}[31m" + String(repeating: "x", count: 10_000) }
        }
        let shown = LogText(Hostile()).description
        #expect(!shown.contains("\n") && !shown.contains("\u{1B}"))
        #expect(shown.hasPrefix(#"bad\nline \u{1B}[31m"#))
        #expect(shown.utf8.count < 400)
    }
}
