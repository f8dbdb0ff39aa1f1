// libFuzzer target: the event JSON decoder (scripts/fuzz.sh event).
//
// Any input must decode or fail with a typed error, never crash; an event that decodes must
// encode and decode back to itself.
import EnnioEvents

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEventJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let input = UnsafeBufferPointer(start: data, count: size)
    guard let event = try? EventCodec.decode(input) else { return 0 }
    var encoded: [UInt8] = []
    EventCodec.encode(event, into: &encoded)
    let again: Event
    do {
        again = try EventCodec.decode(encoded)
    } catch {
        preconditionFailure("an event that decoded does not decode after encoding: \(error)")
    }
    precondition(again == event, "the round trip changed the event")
    return 0
}
