import Foundation
import NIOCore
import SquallCore

extension WebSocketConnection {
    /// Closes the connection with 4002 (``Disconnect/tokenExpired``) at `expires` (a token's
    /// ``ClientIdentity/validUntil``), on its event
    /// loop; cancel the returned task when a fresh token comes first.
    @discardableResult
    func closeWhenExpired(_ expires: Date) -> Scheduled<Void> {
        let seconds = max(0, min(expires.timeIntervalSinceNow, 1_000_000_000))
        return socket.eventLoop.scheduleTask(in: .nanoseconds(Int64(seconds * 1e9))) { [self] in  // trap-ok: at most 1e18
            close(.tokenExpired)
        }
    }
}
