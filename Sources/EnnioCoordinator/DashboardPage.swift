enum DashboardPage { static let bytes: [UInt8] = Array("<html></html>".utf8) }
