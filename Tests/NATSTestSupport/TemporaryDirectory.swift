import Foundation

/// A fresh, empty directory under the system's temporary directory, removed with everything in
/// it when the value goes away. Keep the value alive for as long as the test uses the path.
final class TemporaryDirectory: Sendable {
    let path: String

    init(_ prefix: String = "ennio-test") throws {
        path = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}
