/// Where a replicated stream or consumer lives in a JetStream cluster: its Raft group's leader
/// and the other replicas, as `$JS.API.STREAM.INFO` and `CONSUMER.INFO` report them (absent on
/// a server outside a cluster).
public struct ClusterInfo: Codable, Sendable, Hashable {
    /// The cluster's name.
    public var name: String?
    /// The server that leads the group (takes writes and answers for it); `nil` while there
    /// is none, between the loss of a leader and the election of the next.
    public var leader: String?
    /// The other members of the group.
    public var replicas: [PeerInfo]?

    /// One replica of the group, other than the leader.
    public struct PeerInfo: Codable, Sendable, Hashable {
        /// The server's name.
        public var name: String
        /// Whether it has everything the leader has.
        public var current: Bool
        /// Whether it is offline, as the leader sees it.
        public var offline: Bool?
        /// Nanoseconds since the leader last heard from it.
        public var active: Int64?
        /// Entries it is behind the leader.
        public var lag: UInt64?
    }
}
