// SPDX-License-Identifier: Apache-2.0

import Foundation
import SquallCore

/// `/ws` and the backend's hooks: a connection is welcomed once the connect hook lets it in, a
/// subscribe answered once the subscribe hook allows it, and publishes go through the publish
/// hook one at a time, in the order sent.
extension WSTransport {
    /// What a hook is told about a `/ws` connection.
    func hookCall(_ kind: HookConfiguration.Kind, for subscriber: WSSubscriber, channel: ChannelName? = nil, payload: Payload? = nil)
        -> BackendHooks.Call
    {
        let connection = subscriber.connection
        return BackendHooks.Call(
            kind: kind, client: connection.id, transport: "ws", address: connection.client, user: subscriber.identity.withLock { $0 }?.presenceUser,
            channel: channel, payload: payload, headers: connection.requestHeaders)
    }

    /// Asks the connect hook; allowed, the connection takes who it names (``BackendHooks/Grant/identity(replacing:)``),
    /// is welcomed, and the requests it sent meanwhile are handled in order. Refused, it closes
    /// with the backend's code (4503 by default), or 1013 when the backend did not answer.
    func askConnectHook(_ hook: String, for subscriber: WSSubscriber) {
        let connection = subscriber.connection
        let call = hookCall(.connect, for: subscriber)
        let hooks = policy.hooks
        Task {
            let decision = await hooks.ask(call, at: hook)
            guard case .allow(let grant) = decision else { return connection.close(deniedBy: decision) }
            connection.socket.eventLoop.execute { [self] in
                guard subscribers.withLock({ $0[connection.id] }) === subscriber else { return }
                let held = subscriber.identity.withLock { $0 }
                if let identity = grant.identity(replacing: held), identity !== held {
                    subscriber.identity.withLock { $0 = identity }
                    if identity.presenceUser != nil { subscriber.connected.withLock { $0 = true } }
                    if let user = identity.presenceUser, user != held?.presenceUser { users.add(connection, user: user) }
                    if let old = held?.presenceUser, old != identity.presenceUser, connection.identity == nil { users.remove(connection, user: old) }
                    // Its time is the identity's now; a handshake's deadline for a `connect` is met.
                    expiring.forget(connection)
                }
                welcome(subscriber)
                for message in subscriber.early.release() { handle(message, from: subscriber) }
                connection.resumeReading()
            }
        }
    }

    /// Asks the subscribe hook before `join` subscribes; refused, the subscribe is answered with
    /// `hook_denied` or `hook_unavailable` and the connection stays open.
    func askSubscribeHook(
        _ hook: String, channel: ChannelName, attempt: UInt64, ref: RawJSON?, for subscriber: WSSubscriber, then join: @escaping @Sendable () -> Void
    ) {
        let connection = subscriber.connection
        let call = hookCall(.subscribe, for: subscriber, channel: channel)
        let hooks = policy.hooks
        Task {
            let decision = await hooks.ask(call, at: hook)
            // Back on the connection's loop, where a close or an `unsubscribe` runs: one that
            // came meanwhile means there is nothing to subscribe any more.
            connection.socket.eventLoop.execute { [self] in
                let current = subscribers.withLock { $0[connection.id] } === subscriber && subscriber.channels.withLock { $0[channel] == attempt }
                if current, decision.refusal == nil { return join() }
                if subscriber.pending.end() { connection.resumeReading() }
                subscriber.channels.withLock { channels in
                    if channels[channel] == attempt { channels[channel] = nil }
                }
                send(
                    Self.failure(ref, decision.refusal ?? APIError(.notSubscribed, message: "unsubscribed before the subscribe hook answered")), to: connection)
            }
        }
    }

    /// Asks the publish hook, in the order the connection's publishes came, before `publish`
    /// publishes what it allows (the backend's replacement, if it gave one); refused, the
    /// publish is answered with `hook_denied` or `hook_unavailable`.
    func askPublishHook(
        _ hook: String, channel: ChannelName, payload: Payload, ref: RawJSON?, for subscriber: WSSubscriber,
        then publish: @escaping @Sendable (Payload) -> Void
    ) {
        let connection = subscriber.connection
        let call = hookCall(.publish, for: subscriber, channel: channel, payload: payload)
        let hooks = policy.hooks
        subscriber.calls.run { [self] in
            let decision = await hooks.ask(call, at: hook)
            switch decision {
            case .allow(let grant):
                publish(grant.payload ?? payload)
            case .deny, .unavailable:
                if subscriber.pending.end() { connection.resumeReading() }
                send(Self.failure(ref, decision.refusal ?? APIError(.hookUnavailable, message: "no decision")), to: connection)
            }
        }
    }
}
