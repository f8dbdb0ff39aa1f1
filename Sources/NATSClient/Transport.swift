/// A connected byte stream to one server: plain TCP (``TCPSocket``), or TLS over it.
///
/// The connection's threads are its only users: the reader thread waits and reads, the writer
/// (or a publisher, briefly) writes, so at most one thread reads and one writes at a time.
/// `shutdown()` may be called from any thread, at any time, to wake both; `close()` is called
/// once, after both are done with it. A transport never retries or reconnects by itself: it
/// reports what failed as a ``NATSError`` and the connection decides.
protocol Transport: AnyObject, Sendable {
    /// Waits until a `read` would not block (bytes, end of stream or an error), at most until
    /// `deadline`; false when the deadline passed first.
    func waitReadable(until deadline: ContinuousClock.Instant) -> Bool

    /// Waits until a write would take at least one byte (or fail), at most until `deadline`;
    /// false when the deadline passed first.
    func waitWritable(until deadline: ContinuousClock.Instant) -> Bool

    /// Reads what is available into `buffer`, blocking until something is; 0 means the peer
    /// closed the stream.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(NATSError) -> Int

    /// Writes every byte, blocking as long as needed (until `shutdown()`).
    func write(_ bytes: UnsafeRawBufferPointer) throws(NATSError)

    /// Writes what can be written at once without blocking and returns how many bytes that was
    /// (0 when the stream cannot take any now). The bytes not taken are the caller's to write
    /// later, in order, on this same transport.
    func writeAvailable(_ bytes: UnsafeRawBufferPointer) throws(NATSError) -> Int

    /// Makes blocked and later reads and writes return (reads with 0, writes with an error).
    /// Safe from any thread and after `close()`: it never touches a descriptor this transport
    /// no longer owns.
    func shutdown()

    /// Releases the transport's resources. Call once, when no thread uses it any more.
    func close()
}

extension Transport {
    /// Writes every byte of an array.
    func write(_ bytes: [UInt8]) throws(NATSError) {
        try bytes.withUnsafeBytes { raw in Result { () throws(NATSError) in try write(raw) } }.get()
    }
}
