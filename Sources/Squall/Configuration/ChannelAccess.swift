// SPDX-License-Identifier: Apache-2.0

/// Who may do something on a namespace's channels: subscribe, publish, read history or
/// presence. A connection token's `subscribe` and `publish` patterns grant channels beyond
/// these rules (never past ``none``).
public enum ChannelAccess: String, Sendable, CaseIterable {
    /// Every client, with or without a token.
    case anyone
    /// Clients with a valid connection token.
    case authenticated
    /// Clients subscribed to the channel on the same connection (`/ws`, `/msg`); an HTTP
    /// request, which subscribes to nothing, is refused.
    case subscribers
    /// No client: only the server itself (its Swift API, and the server API to come).
    case none
}
