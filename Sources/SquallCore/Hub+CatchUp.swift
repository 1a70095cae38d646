// SPDX-License-Identifier: Apache-2.0

import Foundation

/// Catching up with a ``SharedLog``: a node's log takes a message only as its next offset, so
/// whatever other nodes appended arrives by a catch-up read, one per channel at a time, started
/// by the broker's notification, by a commit that finds a gap, or by a position past the log.
extension Hub {
    /// Most messages one catch-up read asks a shared store for.
    static let catchUpPage = 500

    /// Longest a poll from a position past this node's log waits for the node to catch up
    /// before it is answered as usual.
    static let catchUpWait = Duration.seconds(2)

    /// Adds a message a shared store positioned to the log if it is the next one, and hands it
    /// to subscribers; the acknowledgements that waited for it go to `ready`. `false` if the log
    /// lacks messages before it (or is in another epoch).
    func ingest(_ message: Message, into state: inout ChannelState.Locked, now time: Date, ready: inout [AfterUnlock]) -> Bool {
        if state.log.isUnpublished {
            guard message.offset == 1 else { return false }
        } else {
            guard message.position.epoch == state.log.epoch, message.offset <= state.log.lastOffset + 1 else { return false }
        }
        if state.log.commit(message) {
            deliver(message, to: &state, now: time)
            if let waiting = state.sync.acknowledgeOnJoin.removeValue(forKey: message.position) { ready += waiting }
        }
        return true
    }

    /// Reads what `channel`'s log lacks from the shared store, one read at a time per channel;
    /// a request while one runs makes it read again when it is done.
    func catchUp(_ channel: ChannelName) {
        guard case .shared(let log, _, _) = storage else { return }
        let start: StreamPosition?? = withExistingChannel(channel) { state in
            guard !state.sync.catchingUp else {
                state.sync.catchUpAgain = true
                return nil
            }
            state.sync.catchingUp = true
            return state.log.position(now: now())
        }
        guard let start = start ?? nil else { return }
        Task { await self.readMissing(channel, from: start, in: log) }
    }

    private func readMissing(_ channel: ChannelName, from start: StreamPosition, in log: any SharedLog) async {
        var position = start
        var failures = 0
        while true {
            let result: CatchUp
            do throws(StoreError) {
                result = try await log.read(channel, after: position, limit: Self.catchUpPage, retention: retention)
                failures = 0
            } catch {
                // Again, sooner at first, then every 0.8 s.
                failures += 1
                try? await Task.sleep(for: .milliseconds(50 << min(failures, 4)))
                // Only while someone waits for it; otherwise the next notification, publish or
                // resynchronize() (the store's link came back) starts it again.
                let next: StreamPosition?? = withExistingChannel(channel) { state in
                    guard failures < 4 || !state.sync.acknowledgeOnJoin.isEmpty || !state.sync.caughtUpWaiters.isEmpty else {
                        state.sync.catchingUp = false
                        return nil
                    }
                    return state.log.position(now: now())
                }
                guard let next = next ?? nil else { return }
                position = next
                continue
            }
            let time = now()
            var ready: [AfterUnlock] = []
            let next: StreamPosition?? = withExistingChannel(channel) { state in
                var more = state.sync.catchUpAgain
                state.sync.catchUpAgain = false
                switch result {
                case .messages(let messages, let following):
                    for message in messages where !ingest(message, into: &state, now: time, ready: &ready) {
                        more = true  // the log moved meanwhile (another epoch): read again
                        break
                    }
                    more = more || following
                case .restart(let stored):
                    ready += restart(&state, from: stored, now: time)
                }
                guard more else {
                    state.sync.catchingUp = false
                    // Read to the end: this node's messages are in the log now, or in an
                    // epoch it has left; their publishers wait no longer.
                    ready += state.sync.acknowledgeOnJoin.values.flatMap { $0 }
                    state.sync.acknowledgeOnJoin = [:]
                    dropSubscribersAhead(&state, now: time)
                    for waiter in state.sync.caughtUpWaiters.values { waiter.resume() }
                    state.sync.caughtUpWaiters = [:]
                    return nil
                }
                return state.log.position(now: time)
            }
            for acknowledge in ready { acknowledge() }
            guard let next = next ?? nil else { return }
            position = next
        }
    }

    /// Caught up with the store: a subscriber that resumed from a position still ahead of the
    /// log was given one the store never had (made up, or lost with the database's tail). It
    /// would wait for offsets that mean other messages, so it is told, as for a restart; one
    /// the log has reached is an ordinary subscriber from here on.
    private func dropSubscribersAhead(_ state: inout ChannelState.Locked, now time: Date) {
        let current = state.log.position(now: time)
        for (key, member) in state.audience.subscribers {
            guard let ahead = member.aheadOf else { continue }
            if case .resumable = state.log.standing(of: ahead, now: time) {
                state.audience.caughtUp(key)
                continue
            }
            _ = state.audience.remove(key)
            member.subscriber.lost(state.log.channel, current: current)
            record(.leave(state.log.channel, member.member), isLocal: true, in: &state)
        }
    }

    /// The shared store no longer has every message after this log's position: the log starts
    /// again from what the store has. Subscribers that followed the old log would miss messages
    /// without knowing, so each is told (``Subscriber/lost(_:current:)``) and unsubscribed;
    /// parked polls wake to find their position unrecoverable.
    /// Returns the acknowledgements that waited for messages of the old log: they are
    /// committed, so their publishers are answered.
    private func restart(_ state: inout ChannelState.Locked, from stored: StoredLog?, now time: Date) -> [AfterUnlock] {
        let channel = state.log.channel
        state.log = ChannelLog(channel: channel, retention: retention(of: channel), stored: stored, followsStore: true, now: time)
        let waiting = state.sync.acknowledgeOnJoin.values.flatMap { $0 }
        state.sync.acknowledgeOnJoin = [:]
        let current = state.log.position(now: time)
        for member in state.audience.subscribers.values {
            member.subscriber.lost(channel, current: current)
            record(.leave(channel, member.member), isLocal: true, in: &state)
        }
        state.audience.removeAll()
        wakePolls(&state)
        return waiting
    }

    /// Starts a catch-up of `channel` and waits for it to finish, at most `limit`: `true` if it
    /// did, having read the store after this call began.
    func caughtUp(_ channel: ChannelName, within limit: Duration) async -> Bool {
        let ticket = UUID.random()
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        let registered =
                            self.withExistingChannel(channel) { state in
                                guard !Task.isCancelled else { return false }
                                state.sync.caughtUpWaiters[ticket] = continuation
                                return true
                            } ?? false
                        if registered { self.catchUp(channel) } else { continuation.resume() }
                    }
                } onCancel: {
                    let waiter = self.withExistingChannel(channel) { state in state.sync.caughtUpWaiters.removeValue(forKey: ticket) }
                    waiter??.resume()
                }
                return !Task.isCancelled
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return false
            }
            let finished = await group.next() ?? false
            group.cancelAll()
            return finished
        }
    }
}

extension Hub: LogFollower {
    /// Called by a log broker: `channel`'s log reached `position` on some node. If this hub
    /// holds the channel and is behind, it reads what it lacks.
    public func advanced(_ channel: ChannelName, to position: StreamPosition) {
        let behind =
            withExistingChannel(channel) { state in
                state.log.isUnpublished || position.epoch != state.log.epoch || position.offset > state.log.lastOffset
            } ?? false
        if behind { catchUp(channel) }
    }

    /// Called by a log broker whose notifications may have been lost: every channel this hub
    /// holds reads what it lacks.
    public func resynchronize() {
        for channel in openChannels() { catchUp(channel) }
    }
}
