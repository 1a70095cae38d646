// SPDX-License-Identifier: Apache-2.0

import Synchronization

/// Where a ``Hub``'s logs live, and so which way a publish takes to them.
public enum LogStorage: Sendable {
    /// In memory only: a publish is in the log at once; a restart forgets everything.
    case memory
    /// A store on this node (SQLite's): the hub gives positions, the store makes them durable.
    case local(any LogStore)
    /// A store several nodes share (PostgreSQL's): it gives positions, its broker tells each
    /// node's hub what other nodes appended, and its registry keeps presence across nodes.
    case shared(any SharedLog, broker: any LogBroker, presence: any PresenceRegistry)

    /// One store that is all three parts of a shared log.
    public static func shared(_ store: any SharedLogStore) -> LogStorage {
        .shared(store, broker: store, presence: store)
    }

    /// Commits what is queued and lets go of the store, if there is one.
    public func close() async {
        switch self {
        case .memory: return
        case .local(let store): await store.close()
        case .shared(let log, _, _): await log.close()
        }
    }

    /// Whether the store answers a read (of a channel nobody uses, which creates nothing) within
    /// `deadline`: what a readiness probe asks. Memory always does.
    public func answers(within deadline: Duration) async -> Bool {
        let probe: @Sendable () async -> Bool
        switch self {
        case .memory:
            return true
        case .local(let store):
            probe = { (try? await store.restore([Self.probeChannel], retention: Self.probeRetention)) != nil }
        case .shared(let log, _, _):
            probe = { (try? await log.open([Self.probeChannel], retention: Self.probeRetention)) != nil }
        }
        // Whichever comes first answers; a store that has not answered by the deadline finishes
        // its read on its own (bounded by the store's deadlines), with nobody waiting on it.
        let race = FirstAnswer()
        return await withCheckedContinuation { continuation in
            race.waiting.withLock { $0 = continuation }
            let timer = Task {
                try? await Task.sleep(for: deadline)
                race.answer(false)
            }
            Task {
                race.answer(await probe())
                timer.cancel()
            }
        }
    }

    /// Whichever of the store and the deadline answers first resumes the probe, once.
    private final class FirstAnswer: Sendable {
        let waiting = Mutex<CheckedContinuation<Bool, Never>?>(nil)

        func answer(_ value: Bool) {
            waiting.withLock { $0.take() }?.resume(returning: value)
        }
    }

    /// The probe reads at most one message of its channel, whoever has published there.
    private static let probeRetention = Retention(maxMessages: 1, maxBytes: 1)

    private static let probeChannel = try! ChannelName("squall.readiness")  // trap-ok: a valid name, written here

    /// The logs are durable: a position given out survives a restart.
    var isDurable: Bool {
        if case .memory = self { return false }
        return true
    }
}
