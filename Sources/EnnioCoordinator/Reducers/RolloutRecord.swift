public import EnnioEvents

/// What the rollout reducer knows of one rollout.
public struct RolloutRecord: Sendable, Hashable {
    public let rolloutId: String
    public let channel: String
    public internal(set) var targetRef: String?
    public internal(set) var state: RolloutState
    /// The wave hosts join now; `nil` until the first host joins.
    public internal(set) var currentWave: Int64?
    /// The hosts by id; emptied when the rollout is pruned (``hostStateCounts`` stays).
    public internal(set) var hosts: [String: RolloutHost] = [:]
    /// How many hosts are in each state, in ``RolloutHostState/allCases`` order.
    public internal(set) var hostStateCounts = [Int](repeating: 0, count: RolloutHostState.allCases.count)
    public internal(set) var hostCount = 0
    /// The rollout this one replaced, and the one that replaced it.
    public internal(set) var supersedes: String?
    public internal(set) var supersededBy: String?
    public internal(set) var clearances: [Clearance] = []
    /// The `at` of the event that opened it, and the latest `at` of the events applied to it.
    public internal(set) var openedAt: EventTimestamp
    public internal(set) var updatedAt: EventTimestamp
    /// Events applied to it (not duplicates or violations).
    public internal(set) var eventCount = 1
    public internal(set) var violations = ViolationLog()
    /// The `RolloutTerminal` the reducer emitted, once it did; and whether it came back.
    public internal(set) var terminalEvent: Event?
    public internal(set) var terminalConfirmed = false

    /// Each `WaveAdvanced` applied, to know one again.
    var advances: [WaveAdvance] = []
    /// Per wave, the hosts that count and those of them that soaked.
    var waves: [Int64: WaveCount] = [:]
    /// Hosts that count (not excused), those converged, and hosts reverted (excused or not).
    var countedHosts = 0
    var convergedHosts = 0
    var revertedHosts = 0
    /// The latest (by timestamp, then id) move to `converged` or clearance: the cause of the
    /// `RolloutTerminal`, whatever order such events of different hosts came in.
    var terminalCause: Cause?

    public struct Clearance: Sendable, Hashable {
        public let operatorName: String
        public let reason: String
        public let at: EventTimestamp
        /// The hosts it excused.
        public let excused: [String]
    }

    struct WaveAdvance: Sendable, Hashable {
        let from: Int64
        let to: Int64
        let at: EventTimestamp
    }

    struct WaveCount: Sendable, Hashable {
        var counted = 0
        var soaked = 0

        mutating func add(counted: Int, soaked: Int) {
            self.counted += counted
            self.soaked += soaked
        }
    }

    struct Cause: Sendable, Hashable, Comparable {
        let timestamp: EventTimestamp
        let id: String
        let at: String

        static func < (lhs: Cause, rhs: Cause) -> Bool {
            (lhs.timestamp, lhs.id) < (rhs.timestamp, rhs.id)
        }
    }

    init(rolloutId: String, channel: String, targetRef: String?, supersedes: String? = nil, at: EventTimestamp) {
        self.rolloutId = rolloutId
        self.channel = channel
        self.targetRef = targetRef
        self.state = .opening
        self.supersedes = supersedes
        self.openedAt = at
        self.updatedAt = at
    }

    /// How many hosts are in `state`.
    public func hostCount(in state: RolloutHostState) -> Int {
        hostStateCounts[state.index]
    }

    /// Adds (`sign` 1) or takes away (-1) what `host` contributes to the counts.
    mutating func count(_ host: RolloutHost, _ sign: Int) {
        hostStateCounts[host.state.index] += sign
        if host.state == .reverted { revertedHosts += sign }
        guard !host.excused else { return }
        countedHosts += sign
        if host.state == .converged { convergedHosts += sign }
        let soaked = host.state.hasSoaked ? sign : 0
        waves[host.wave, default: WaveCount()].add(counted: sign, soaked: soaked)
    }

    /// Changes the host at `index` in place, keeping the counts right.
    mutating func update(hostAt index: Dictionary<String, RolloutHost>.Index, _ change: (inout RolloutHost) -> Void) {
        count(hosts.values[index], -1)
        change(&hosts.values[index])
        count(hosts.values[index], 1)
    }

    mutating func touch(_ at: EventTimestamp) {
        eventCount += 1
        if at > updatedAt { updatedAt = at }
    }

    /// Every counted host of the current wave has soaked (and there is one).
    var currentWaveSoaked: Bool {
        guard let currentWave, let wave = waves[currentWave] else { return false }
        return wave.counted > 0 && wave.soaked == wave.counted
    }

    /// Every counted host of every wave converged (and there is one).
    var everyHostConverged: Bool { countedHosts > 0 && convergedHosts == countedHosts }

    /// Every host is reverted (and there is one).
    var everyHostReverted: Bool { hostCount > 0 && revertedHosts == hostCount }

    /// Forgets the hosts and their bookkeeping: a pruned rollout keeps only its summary.
    mutating func prune() {
        state = .pruned
        hosts = [:]
        advances = []
        waves = [:]
    }
}

/// One host of a rollout.
public struct RolloutHost: Sendable, Hashable {
    public let hostId: String
    public let wave: Int64
    public internal(set) var state: RolloutHostState = .dispatched
    /// Excused by an operator's clearance: no longer holds its wave or the rollout back
    /// (until it is dispatched again).
    public internal(set) var excused = false
    /// Every move applied, the join first (`from` nil).
    public internal(set) var moves: [Move]

    public struct Move: Sendable, Hashable {
        public let from: RolloutHostState?
        public let to: RolloutHostState
        public let at: EventTimestamp
    }

    init(hostId: String, wave: Int64, at: EventTimestamp) {
        self.hostId = hostId
        self.wave = wave
        moves = [Move(from: nil, to: .dispatched, at: at)]
        moves.reserveCapacity(4)
    }

    public var joinedAt: EventTimestamp { moves[0].at }
    public var changedAt: EventTimestamp { moves[moves.count - 1].at }
}

extension RolloutHostState {
    /// The position in `allCases`.
    var index: Int {
        switch self {
        case .dispatched: 0
        case .soaking: 1
        case .soaked: 2
        case .converged: 3
        case .failed: 4
        case .reverting: 5
        case .reverted: 6
        }
    }
}
