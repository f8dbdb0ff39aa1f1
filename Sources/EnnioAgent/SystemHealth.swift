import Glibc

/// Load averages and uptime of this machine, from `/proc` (nil where unavailable).
struct SystemHealth {
    var load: [Double]?
    var uptimeSeconds: Double?

    static func read() -> SystemHealth {
        var health = SystemHealth()
        if let text = readSmallFile("/proc/loadavg") {
            let fields = text.split(separator: " ").prefix(3).compactMap { Double($0) }
            if fields.count == 3 { health.load = fields }
        }
        if let text = readSmallFile("/proc/uptime"), let first = text.split(separator: " ").first {
            health.uptimeSeconds = Double(first)
        }
        return health
    }

    private static func readSmallFile(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 256)
        guard fgets(&buffer, Int32(buffer.count), file) != nil else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
