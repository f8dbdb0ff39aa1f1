// libFuzzer target: the NATS protocol parser (scripts/fuzz.sh parser).
//
// Any input must parse without crashing, within the limits, and input split at any point
// (here: at a handful of points chosen from the input, and one byte at a time) must give the
// same operations — and the same failure, if any — as the input in one piece.
import NATSProtocol

private func operations(_ chunks: [ArraySlice<UInt8>]) -> (operations: [ServerOperation], failed: Bool) {
    var parser = ProtocolParser(maximumControlLineLength: 256, maximumPayloadLength: 1024)
    var operations: [ServerOperation] = []
    for chunk in chunks {
        parser.append(chunk)
        do {
            while let operation = try parser.next() { operations.append(operation) }
        } catch {
            return (operations, true)
        }
    }
    return (operations, false)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzParser(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let whole = operations([input[...]])
    var splits = Set([0, size / 2, size])
    for byte in input.prefix(6) { splits.insert(Int(byte) % (size + 1)) }
    for split in splits {
        let parts = operations([input[..<split], input[split...]])
        precondition(parts.operations == whole.operations && parts.failed == whole.failed, "split at \(split) parses differently")
    }
    if size <= 512 {
        let bytewise = operations(input.indices.map { input[$0...$0] })
        precondition(bytewise.operations == whole.operations && bytewise.failed == whole.failed, "byte by byte parses differently")
    }
    return 0
}
