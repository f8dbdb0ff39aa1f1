// libFuzzer target: the HTTP request parser (scripts/fuzz.sh http).
//
// Any input must parse without crashing and within the limits (nothing buffered much past
// them), and input split at any point (here: at a handful of points chosen from the input, and
// one byte at a time) must give the same requests — and the same error, if any — as the input
// in one piece.
import EnnioHTTP

private func requests(_ chunks: [ArraySlice<UInt8>]) -> (requests: [HTTPRequest], error: HTTPError.Code?) {
    var limits = HTTPRequestParser.Limits()
    limits.requestLine = 200
    limits.headerSection = 600
    limits.headerCount = 8
    limits.body = 300
    var parser = HTTPRequestParser(limits: limits)
    var requests: [HTTPRequest] = []
    for chunk in chunks {
        parser.append(chunk)
        do {
            while let request = try parser.next() { requests.append(request) }
        } catch {
            return (requests, error.code)
        }
        precondition(parser.bufferedByteCount <= limits.headerSection + limits.body + chunk.count, "buffered past the limits")
    }
    return (requests, nil)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPParser(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let whole = requests([input[...]])
    var splits = Set([0, size / 2, size])
    for byte in input.prefix(6) { splits.insert(Int(byte) % (size + 1)) }
    for split in splits {
        let parts = requests([input[..<split], input[split...]])
        precondition(parts.requests == whole.requests && parts.error == whole.error, "split at \(split) parses differently")
    }
    if size <= 512 {
        let bytewise = requests(input.indices.map { input[$0...$0] })
        precondition(bytewise.requests == whole.requests && bytewise.error == whole.error, "byte by byte parses differently")
    }
    return 0
}
