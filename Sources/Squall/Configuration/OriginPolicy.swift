// SPDX-License-Identifier: Apache-2.0

/// Which web pages may use Squall from a visitor's browser (Tornado's `check_origin`): open a
/// WebSocket, change state over HTTP (publish), and read HTTP replies (CORS).
///
/// A browser sends `Origin` with every WebSocket upgrade and every cross-origin request, and a
/// page cannot forge it; other clients (curl, servers, native apps) usually send none. So:
/// - a request **without** `Origin` passes — it did not come from a page; so does one whose
///   `Origin` has a WebSocket scheme (`ws://`, `wss://`), which a page never has (browsers send
///   `http`, `https` or `null`) and some client libraries send (swift-websocket's client does);
/// - a request from the server's **own origin** passes: the `Origin`'s host and port equal the
///   request's `Host` (as Tornado compares them; the scheme is not compared, so one policy
///   serves `http` and `https` alike);
/// - a request from a **listed** origin passes; `*` lists every origin, and only when given;
/// - any other origin is refused: a WebSocket upgrade and a request that changes state get
///   **403** `origin_not_allowed`; a read gets its answer without CORS headers, which the
///   browser then keeps from the page.
///
/// Without this, any page a user visits could open a WebSocket to Squall as that user
/// (cross-site WebSocket hijacking) or publish from the user's browser.
public struct OriginPolicy: Sendable, Hashable {
    /// Origins admitted besides the server's own, each `scheme://host[:port]` in lower case
    /// without a trailing slash, or `*` for every origin. Default none.
    public private(set) var allowed: Set<String>

    /// A policy admitting the server's own origin only: the default.
    public init() {
        allowed = []
    }

    /// A policy admitting the server's own origin and `origins` (each `scheme://host[:port]`,
    /// or `*`); see ``normalized(_:)`` for what each must look like.
    /// - Throws: ``InvalidOrigin`` for an entry that is not an origin.
    public init(allowing origins: [String]) throws(InvalidOrigin) {
        var allowed = Set<String>()
        for origin in origins {
            allowed.insert(try Self.normalized(origin))
        }
        self.allowed = allowed
    }

    /// An entry of ``allowed`` that is not an origin.
    public struct InvalidOrigin: Error, CustomStringConvertible {
        /// The entry as given.
        public let origin: String

        /// Why it was refused, as the command line prints it.
        public var description: String {
            "\(origin) is not an origin: give scheme://host[:port] (no path), or *"
        }
    }

    /// Whether every origin is admitted (`*` was given).
    public var admitsAny: Bool { allowed.contains("*") }

    /// Whether a request with this `Origin` field (`nil` when absent) to this `Host` passes.
    public func admits(origin: String?, host: String?) -> Bool {
        guard let origin else { return true }
        if admitsAny { return true }
        let lowered = origin.lowercased()
        if lowered.hasPrefix("ws://") || lowered.hasPrefix("wss://") { return true }
        if let host, let authority = Self.authority(of: lowered), authority == host.lowercased() {
            return true
        }
        return allowed.contains(lowered)
    }

    /// `origin` as ``allowed`` keeps it: `*`, or a lower-case `scheme://host[:port]` with no
    /// trailing slash, scheme `http` or `https`.
    public static func normalized(_ origin: String) throws(InvalidOrigin) -> String {
        if origin == "*" { return origin }
        var lowered = origin.lowercased()
        if lowered.hasSuffix("/") { lowered.removeLast() }
        guard lowered.hasPrefix("http://") || lowered.hasPrefix("https://"), let authority = authority(of: lowered),
            !authority.isEmpty, authority.utf8.allSatisfy(isAuthorityByte)
        else { throw InvalidOrigin(origin: origin) }
        return lowered
    }

    /// The `host[:port]` of a serialized origin, `nil` when it is not `scheme://authority`.
    private static func authority(of origin: String) -> Substring? {
        guard let separator = origin.range(of: "://") else { return nil }
        let authority = origin[separator.upperBound...]
        return authority.contains("/") ? nil : authority
    }

    /// Letters, digits and the punctuation of host names, IPv6 literals and ports.
    private static func isAuthorityByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "_"):
            true
        default:
            false
        }
    }
}
