// SPDX-License-Identifier: Apache-2.0

import NIOCore
import Synchronization

/// The moment an HTTP client goes away while its request is being served (its side of the
/// connection ended: a closed tab, a cancelled `curl`, a port scanner), for the routes that would
/// otherwise hold the socket open for nobody — a parked long poll, an SSE stream.
///
/// Contracts: ``whenDeparted(_:)`` runs its closure exactly once, at the departure or at once if
/// it happened already; a request that never departs never runs it.
final class ClientDeparture: Sendable {
    private struct State {
        var departed = false
        var actions: [@Sendable () -> Void] = []
    }

    private let state = Mutex(State())

    /// Runs `action` when the client goes away.
    func whenDeparted(_ action: @escaping @Sendable () -> Void) {
        let now = state.withLock { state in
            if !state.departed { state.actions.append(action) }
            return state.departed
        }
        if now { action() }
    }

    /// The client went away: every action runs, now and for later registrations.
    func depart() {
        let actions = state.withLock { state in
            state.departed = true
            defer { state.actions = [] }
            return state.actions
        }
        for action in actions { action() }
    }

    /// Runs `body` in a task of its own that is cancelled when the client departs, or when the
    /// calling task is.
    func cancelling<Result: Sendable>(_ body: @escaping @Sendable () async -> Result) async -> Result {
        let task = Task { await body() }
        whenDeparted { task.cancel() }
        return await withTaskCancellationHandler {
            await task.value
        } onCancel: {
            task.cancel()
        }
    }
}

/// Each HTTP connection's ``ClientDeparture``, by socket, for the routes to find: the connection's
/// ``HTTPConnectionGuard`` registers it while the connection is open.
final class ClientDepartures: Sendable {
    private let bySocket = Mutex<[ObjectIdentifier: ClientDeparture]>([:])

    /// The departure of `socket`'s client: one that has happened if the socket is closed
    /// already, one that never happens if the socket is not an HTTP connection's.
    subscript(socket: any Channel) -> ClientDeparture {
        if let departure = bySocket.withLock({ $0[ObjectIdentifier(socket)] }) { return departure }
        let departure = ClientDeparture()
        if !socket.isActive { departure.depart() }
        return departure
    }

    func register(_ departure: ClientDeparture, for socket: any Channel) {
        bySocket.withLock { $0[ObjectIdentifier(socket)] = departure }
    }

    func remove(_ socket: any Channel) {
        _ = bySocket.withLock { $0.removeValue(forKey: ObjectIdentifier(socket)) }
    }
}
