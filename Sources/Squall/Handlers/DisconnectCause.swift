// SPDX-License-Identifier: Apache-2.0

import SquallCore
import Synchronization

/// Why a WebSocket connection or SSE stream ended, as `disconnected` events and
/// `squall_disconnections_total` say.
enum DisconnectCause: String, CaseIterable, Sendable {
    case clientClose = "client_close"
    case slowConsumer = "slow_consumer"
    case pingTimeout = "ping_timeout"
    case kicked
    case tokenExpired = "token_expired"
    case nodeShutdown = "node_shutdown"
    case denied
    case serverClose = "server_close"
    case error

    /// Why a WebSocket connection ended, from its ``CloseCause``; `kicked` when the server API
    /// closed it, `denied` when a hook did. Also the close's code and reason when the server
    /// sent one.
    static func of(_ cause: CloseCause, kicked: Bool, denied: Bool) -> (DisconnectCause, Disconnect?) {
        switch cause {
        case .clientClosed: (.clientClose, nil)
        case .pingTimedOut: (.pingTimeout, nil)
        case .failed(let error): (.error, (error as? WebSocketStateMachine.ProtocolViolation)?.disconnect)
        case .serverClosed(let disconnect): (kicked ? .kicked : denied ? .denied : Self(disconnect), disconnect)
        }
    }

    /// Why the server ended a connection or stream with `disconnect`.
    init(_ disconnect: Disconnect) {
        self =
            switch disconnect {
            case .slowConsumer: .slowConsumer
            case .tokenExpired: .tokenExpired
            case .shutdown: .nodeShutdown
            case .hookUnavailable: .denied
            // 4503: `Disconnect.hookDenied` without a code of the backend's.
            default: disconnect.code == 4503 ? .denied : .serverClose
            }
    }
}

/// How many connections and streams ended, by cause, since the server started: counted once
/// per ending (a lock taken then, never per message), read when Prometheus scrapes.
final class Disconnections: Sendable {
    private let counts = Mutex<[DisconnectCause: Int]>([:])

    init() {}

    func count(_ cause: DisconnectCause) {
        counts.withLock { $0[cause, default: 0] += 1 }
    }

    /// Each cause with its total so far.
    var totals: [DisconnectCause: Int] { counts.withLock { $0 } }
}
