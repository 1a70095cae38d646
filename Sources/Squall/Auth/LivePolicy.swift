// SPDX-License-Identifier: Apache-2.0

import Foundation
import SquallCore
import Synchronization

/// What may change while the server runs — allowed origins, rates, tokens' keys, namespaces and
/// API keys — as one snapshot that every request reads and a reload swaps whole.
///
/// Contracts: a read is one uncontended lock and a reference copy; nothing waits on a reload.
/// A connection keeps what it was granted when it connected and subscribed (permissions are
/// never checked per delivery); its next request is decided by the new snapshot.
public final class LivePolicy: Sendable {
    /// The parts of the configuration that can change live.
    public struct Snapshot: Sendable {
        public var origins: OriginPolicy
        public var publishRate: RateLimit?
        public var subscribeRate: RateLimit?
        public var access: AccessPolicy
        /// The keys that open the server API.
        public var apiKeys: APIKeys
    }

    private let state: Mutex<Snapshot>
    /// The backend's hooks, which a restart changes (a namespace's own hooks change live).
    let hooks: BackendHooks
    /// When the JWKS URLs were last fetched because a token named a `kid` they lacked.
    private let lastKeyRefresh = Mutex<ContinuousClock.Instant?>(nil)

    init(_ snapshot: Snapshot, hooks: HookConfiguration = HookConfiguration(), maxMessageSize: Int = 1 << 20) {
        state = Mutex(snapshot)
        self.hooks = BackendHooks(hooks, maxInfo: snapshot.access.maxInfo, maxMessageSize: maxMessageSize)
    }

    /// The snapshot now.
    public var current: Snapshot { state.withLock { $0 } }

    func update(_ change: (inout Snapshot) -> Void) {
        state.withLock { change(&$0) }
    }

    /// Loads `auth`'s keys and then swaps them in — unless a reload changed the auth settings
    /// while they were being fetched (a JWKS URL may take seconds): then the reload's stand.
    func reloadKeys(_ auth: AuthConfiguration) async throws(TokenKeys.LoadError) {
        let keys = try await TokenKeys.load(auth)
        update { snapshot in
            guard snapshot.access.auth == auth else { return }
            snapshot.access.keys = keys
        }
    }

    /// The identity `token` proves under the current snapshot (``AccessPolicy/identify(_:now:)``);
    /// a token naming a `kid` the keys lack makes a JWKS URL be fetched again.
    func identify(_ token: String?, in access: AccessPolicy, now: Date = Date()) throws(APIError) -> ClientIdentity? {
        do {
            return try access.verify(token, now: now)
        } catch {
            if case .unknownKey = error { keysMissed() }
            throw APIError.unauthorized(error.description)
        }
    }

    /// Whether the keys come from a JWKS URL, which ``refreshKeys()`` fetches again.
    var fetchesKeys: Bool {
        current.access.auth.keys.contains { key in
            if case .jwks(let location) = key { return location.hasPrefix("http://") || location.hasPrefix("https://") }
            return false
        }
    }

    /// Fetches the keys again after a token named an unknown `kid` — at most once per tenth of
    /// the refresh interval, so that made-up `kid`s cannot make the server hammer the JWKS URL.
    /// The token that asked is refused; its client's next attempt sees the new keys.
    func keysMissed() {
        guard fetchesKeys else { return }
        let auth = current.access.auth
        let now = ContinuousClock.now
        let due = lastKeyRefresh.withLock { last -> Bool in
            if let last, now - last < auth.jwksRefresh / 10 { return false }
            last = now
            return true
        }
        guard due else { return }
        Task { try? await reloadKeys(auth) }
    }
}
