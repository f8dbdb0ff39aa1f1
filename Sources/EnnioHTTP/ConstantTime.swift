/// Comparisons whose time does not depend on where the inputs differ: for secrets such as
/// bearer tokens, so that timing a wrong guess tells nothing about the right one.
public enum ConstantTime {
    /// Whether `a` and `b` hold the same bytes. Takes as long for any `a` of a given length,
    /// whatever `b` holds (the length of `b` is not secret).
    public static func equal(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        let left = Array(a)
        let right = Array(b)
        var difference = UInt8(truncatingIfNeeded: left.count ^ right.count) | (left.count == right.count ? 0 : 1)
        for index in 0..<left.count {
            difference |= left[index] ^ (index < right.count ? right[index] : 0)
        }
        return difference == 0
    }
}
