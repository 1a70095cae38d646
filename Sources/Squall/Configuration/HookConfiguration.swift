// SPDX-License-Identifier: Apache-2.0

/// The backend's hooks: URLs Squall asks before it lets a connection in, renews it, lets it
/// subscribe or publishes for it (what Centrifugo calls proxies). A hook that is not set lets
/// everything through, as the namespaces and tokens decide.
///
/// Contracts: a hook answers within ``timeout`` or counts as unavailable; at most
/// ``concurrency`` calls of one hook wait at once, and a call over that counts as unavailable at
/// once. Unavailable denies (`hook_unavailable`): a backend that is down never lets a client
/// through unchecked, and never holds one for longer than the timeout.
public struct HookConfiguration: Sendable, Equatable {
    /// What a hook is asked about.
    public enum Kind: String, Sendable, CaseIterable {
        /// A WebSocket connection or SSE stream opening.
        case connect
        /// A connection whose time is up (its token's or the connect hook's `expire_at`).
        case refresh
        /// A subscription: `/ws` `subscribe`, a `/msg` socket, an SSE stream, a poll.
        case subscribe
        /// A client's publish, on every transport.
        case publish
    }

    /// The URL of each hook that is set.
    public var urls: [Kind: String]
    /// How long a hook may take to answer. Default 3 s.
    public var timeout: Duration
    /// Most calls of one hook waiting at once. Default 1,000.
    public var concurrency: Int
    /// Request headers the hooks are shown (lowercase names: `cookie`, `x-request-id`). Default
    /// none.
    public var headers: [String]

    /// Hooks; every argument has the default documented on its property.
    public init(urls: [Kind: String] = [:], timeout: Duration = .seconds(3), concurrency: Int = 1000, headers: [String] = []) {
        self.urls = urls
        self.timeout = timeout
        self.concurrency = concurrency
        self.headers = headers.map { $0.lowercased() }
    }

    /// Whether `text` is a URL a hook can be: http:// or https:// and a host.
    public static func isURL(_ text: String) -> Bool {
        guard let scheme = text.range(of: "://"), ["http", "https"].contains(text[..<scheme.lowerBound].lowercased()) else { return false }
        return !text[scheme.upperBound...].isEmpty && !text.contains(where: \.isWhitespace)
    }
}

/// A namespace's own subscribe or publish hook, instead of the server's.
public enum NamespaceHook: Sendable, Equatable {
    /// The server's hook, if it has one.
    case inherited
    /// No hook here, whatever the server's.
    case off
    /// This URL.
    case url(String)

    /// The hook a channel of the namespace is asked with: this one's, or `server`'s.
    func url(server: String?) -> String? {
        switch self {
        case .inherited: server
        case .off: nil
        case .url(let url): url
        }
    }
}
