// libFuzzer target: the RFC 3339 timestamp parser (scripts/fuzz.sh timestamp).
//
// Any text must parse or fail with a typed error, never crash; a timestamp that parses must
// print as RFC 3339 and parse back to the same instant.
import EnnioEvents

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTimestamp(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let timestamp = try? EventTimestamp(rfc3339: text) else { return 0 }
    let printed = timestamp.rfc3339
    guard let again = try? EventTimestamp(rfc3339: printed) else {
        preconditionFailure("\(printed.debugDescription) (from \(text.debugDescription)) does not parse")
    }
    precondition(again == timestamp, "\(text.debugDescription) → \(printed) → a different instant")
    return 0
}
