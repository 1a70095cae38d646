// SPDX-License-Identifier: Apache-2.0

import DequeModule
import Foundation

/// How long and how many idempotency keys a channel remembers (``IdempotencyKey``).
public struct IdempotencyWindow: Sendable, Hashable {
    /// How long after a publish a retry with its key returns it instead of appending. Default
    /// 5 minutes, as Centrifugo's.
    public var duration: Duration
    /// Most committed keys remembered per channel; past it the oldest is forgotten first (keys
    /// whose publish is still being committed are kept until it is). Default 4,096: with keys
    /// of at most 255 bytes, about 1.5 MiB per channel at most.
    public var maxKeys: Int

    /// A window of `duration` holding at most `maxKeys` keys (at least 1).
    public init(duration: Duration = .seconds(300), maxKeys: Int = 4096) {
        self.duration = duration
        self.maxKeys = max(1, maxKeys)
    }
}

/// The idempotency keys one channel has seen within its ``IdempotencyWindow``, and what became
/// of each publish they named. Not thread-safe: the ``Hub`` keeps it under its channel's lock.
///
/// Contracts:
/// - A key whose publish is committed answers every retry with that message (its position,
///   id and time; the payload is not kept, only its ``PayloadFingerprint``) until the window
///   passes or the key is the oldest of too many.
/// - A key whose publish is still being committed holds its retries' callbacks; they get the
///   first publish's outcome. Such a key is never forgotten before that outcome.
/// - A key whose publish failed is forgotten: the next retry appends.
/// - A key used again with another payload is **reused**: that publish is refused, and the
///   first one's outcome stands.
struct RecentPublishes {
    typealias Callback = @Sendable (Result<Message, PublishError>) -> Void

    private enum State {
        case pending([Callback])
        case committed(Message)
    }

    private struct Entry {
        var state: State
        /// The first publish's payload, to tell a retry from a reuse.
        let fingerprint: PayloadFingerprint
        /// When the key was first seen; also its place in `order`.
        let since: Date
    }

    let window: IdempotencyWindow
    private var entries: [IdempotencyKey: Entry] = [:]
    /// Keys oldest first, with when each was seen; an element whose entry has a later `since`
    /// (the key failed and came back) is stale and skipped.
    private var order: Deque<(key: IdempotencyKey, since: Date)> = []

    init(window: IdempotencyWindow) {
        self.window = window
    }

    /// The keys of `stored`'s messages still within the window, as a store gave them back.
    init(window: IdempotencyWindow, restoring stored: StoredLog?, now: Date) {
        self.window = window
        for message in stored?.messages ?? [] {
            guard let key = stored?.idempotencyKeys[message.offset] else { continue }
            _ = commit(key, message, now: message.time)
        }
        forget(now: now)
    }

    /// How a publish starts.
    enum Start {
        /// The key's publish is committed: the answer is its message.
        case answered(Message)
        /// The key's publish is being committed: `callback` gets its outcome.
        case waiting
        /// No key, or a new one (now pending): the publish goes ahead.
        case proceed
        /// The key named a publish of another payload: this one is refused.
        case reused
    }

    /// A publish of `fingerprint` under `key`, if it has one: answered, waiting, refused or
    /// going ahead. A retry waiting for the pending publish keeps `callback` for its outcome.
    mutating func begin(
        _ key: IdempotencyKey?,
        _ fingerprint: @autoclosure () -> PayloadFingerprint,
        now: Date,
        retry callback: @escaping Callback
    ) -> Start {
        guard let key else { return .proceed }
        forget(now: now)
        guard let entry = entries[key] else {
            entries[key] = Entry(state: .pending([]), fingerprint: fingerprint(), since: now)
            remember(key, since: now)
            forget(now: now)
            return .proceed
        }
        guard entry.fingerprint == fingerprint() else { return .reused }
        switch entry.state {
        case .committed(let message):
            return .answered(message)
        case .pending(var callbacks):
            callbacks.append(callback)
            entries[key]?.state = .pending(callbacks)
            return .waiting
        }
    }

    /// Appends to `order`, first dropping its stale elements when they are as many as the
    /// live ones: keys that failed and were retried would otherwise pile up behind an older
    /// key that the window keeps.
    private mutating func remember(_ key: IdempotencyKey, since: Date) {
        if order.count >= 2 * entries.count + 64 {
            order = Deque(order.filter { entries[$0.key]?.since == $0.since })
        }
        order.append((key, since))
    }

    /// `key`'s publish is in the log as `message`; returns the retries waiting for it. (A key
    /// not seen yet — one a store gave back with its message — is remembered from here.)
    mutating func commit(_ key: IdempotencyKey, _ message: Message, now: Date) -> [Callback] {
        let waiting: [Callback]
        if case .pending(let callbacks)? = entries[key]?.state { waiting = callbacks } else { waiting = [] }
        if entries[key] == nil {
            entries[key] = Entry(state: .committed(message.withoutPayload), fingerprint: message.payload.fingerprint, since: now)
            remember(key, since: now)
        } else {
            entries[key]?.state = .committed(message.withoutPayload)
        }
        forget(now: now)
        return waiting
    }

    /// `key`'s publish failed; returns the retries waiting for it. The key is forgotten.
    mutating func fail(_ key: IdempotencyKey) -> [Callback] {
        guard case .pending(let callbacks)? = entries.removeValue(forKey: key)?.state else { return [] }
        return callbacks
    }

    /// Keys remembered.
    var count: Int { entries.count }

    /// Forgets committed keys past the window, and the oldest past `maxKeys`; stops at the
    /// oldest key still pending.
    mutating func forget(now: Date) {
        let cutoff = now.addingTimeInterval(-window.duration.inSeconds)
        while let (key, since) = order.first {
            guard let entry = entries[key], entry.since == since else {
                order.removeFirst()  // stale: the key failed, or came back later
                continue
            }
            guard case .committed = entry.state, since < cutoff || entries.count > window.maxKeys else { return }
            entries[key] = nil
            order.removeFirst()
        }
    }
}

extension Message {
    /// This message's position, id and time without its bytes: what a retry's answer needs.
    var withoutPayload: Message {
        Message(channel: channel, position: position, id: id, time: time, publisher: publisher, payload: .text(""))
    }
}
