// SPDX-License-Identifier: Apache-2.0

import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Counts open connections, in all and per client network, and decides whether the next one is
/// served, answered 503, or — when answering would take descriptors the process does not have —
/// closed at once (``ConnectionLimits``).
///
/// Contracts:
/// - ``admit(_:)`` that admits has counted the connection, and the caller calls
///   ``release(_:)`` exactly once when it closes. One it refuses is counted among the refused
///   until ``releaseRefused()``: refused connections are answered and closed within
///   ``refusalTime``, and while the admitted and the refused together hold the connections'
///   whole budget of descriptors (the total, plus ``refusalAllowance`` of the reserve so that
///   a full server still answers 503), a new one over a limit is dropped instead, unanswered —
///   so no number of refused connections can leave the process without a descriptor for
///   anyone else.
/// - Loopback peers (`127.0.0.1`, `::1`) and trusted proxies count in the total only: they
///   connect on behalf of many clients. A trusted proxy's connection is counted against the
///   client it forwards for once its first request says who that is (``admitForwarded(_:)``).
/// - Clients are keyed by network (``ClientAddresses``): an IPv6 /64 by default.
final class ConnectionAdmission: Sendable {
    /// What becomes of an accepted connection.
    enum Decision {
        /// Served, and counted.
        case admitted
        /// Over a limit: answered with this error and closed within ``refusalTime``.
        case refused(APIError)
        /// Over a limit when the process has no descriptor to spare for answering: closed now.
        case dropped
    }

    /// Longest a refused connection is kept: to finish TLS, be answered and let its client read
    /// the answer.
    static let refusalTime = TimeAmount.seconds(1)

    /// The limits in force: the configured ones, with the total lowered to what the process
    /// may open; a reload changes them (``update(_:)``) for connections that come after.
    var limits: ConnectionLimits {
        ConnectionLimits(maxConnections: maxConnections.load(ordering: .relaxed), maxPerAddress: maxPerAddress.load(ordering: .relaxed))
    }
    private let maxConnections: Atomic<Int>
    private let maxPerAddress: Atomic<Int>
    private let descriptorLimit: Int?
    let addresses: ClientAddresses
    private let open = Atomic<Int>(0)
    private let refusing = Atomic<Int>(0)
    private let perAddress = Mutex<[IPAddress: Int]>([:])

    init(_ limits: ConnectionLimits, addresses: ClientAddresses = ClientAddresses(), descriptorLimit: Int? = ConnectionAdmission.descriptorLimit()) {
        self.descriptorLimit = descriptorLimit
        self.maxConnections = Atomic(Self.total(limits, descriptorLimit))
        self.maxPerAddress = Atomic(limits.maxPerAddress)
        self.addresses = addresses
    }

    /// Takes new limits: connections already open stay, whatever their number.
    func update(_ limits: ConnectionLimits) {
        maxConnections.store(Self.total(limits, descriptorLimit), ordering: .relaxed)
        maxPerAddress.store(limits.maxPerAddress, ordering: .relaxed)
    }

    /// The total, lowered to what the process may open: listening sockets, log files and the
    /// store need descriptors too.
    private static func total(_ limits: ConnectionLimits, _ descriptorLimit: Int?) -> Int {
        guard let descriptorLimit else { return limits.maxConnections }
        return max(1, min(limits.maxConnections, descriptorLimit - reservedDescriptors))
    }

    /// Descriptors kept for everything but client connections.
    static let reservedDescriptors = 64
    /// Of those, how many refused connections may hold beyond the total while they are answered.
    static let refusalAllowance = reservedDescriptors / 4

    /// The process's soft `RLIMIT_NOFILE`, if it has one that fits an `Int`.
    static func descriptorLimit() -> Int? {
        var limit = rlimit()
        // RLIM_INFINITY is all ones, which Swift cannot import as a literal.
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else { return nil }
        return Int(exactly: limit.rlim_cur)
    }

    /// Decides a connection from `peer`.
    func admit(_ peer: IPAddress?) -> Decision {
        let total = open.add(1, ordering: .relaxed).newValue
        let maxConnections = maxConnections.load(ordering: .relaxed)
        guard total <= maxConnections else {
            open.subtract(1, ordering: .relaxed)
            return refuse(.tooManyConnections(limit: maxConnections, fromOneAddress: false))
        }
        guard let peer, !peer.isLoopback, !addresses.isTrustedProxy(peer) else { return .admitted }
        if let refusal = count(peer) {
            open.subtract(1, ordering: .relaxed)
            return refuse(refusal)
        }
        return .admitted
    }

    /// Counts a trusted proxy's admitted connection against `client`, the one its first request
    /// is forwarded for: `nil`, and the caller calls ``releaseForwarded(_:)`` when it closes; or
    /// why it is refused (then nothing was counted for the client).
    func admitForwarded(_ client: IPAddress?) -> APIError? {
        guard let client, !client.isLoopback, !addresses.isTrustedProxy(client) else { return nil }
        return count(client)
    }

    /// Counts one more connection of `client`'s network, or says why not.
    private func count(_ client: IPAddress) -> APIError? {
        guard let key = addresses.key(client) else { return nil }
        let limit = maxPerAddress.load(ordering: .relaxed)
        let admitted = perAddress.withLock { counts in
            let count = counts[key, default: 0]
            guard count < limit else { return false }
            counts[key] = count + 1
            return true
        }
        return admitted ? nil : .tooManyConnections(limit: limit, fromOneAddress: true)
    }

    private func refuse(_ error: APIError) -> Decision {
        // Answering takes a descriptor for up to `refusalTime`: only while the budget has one.
        let held = refusing.add(1, ordering: .relaxed).newValue
        guard open.load(ordering: .relaxed) + held <= maxConnections.load(ordering: .relaxed) + Self.refusalAllowance else {
            refusing.subtract(1, ordering: .relaxed)
            return .dropped
        }
        return .refused(error)
    }

    /// Uncounts a connection ``admit(_:)`` admitted.
    func release(_ peer: IPAddress?) {
        open.subtract(1, ordering: .relaxed)
        guard let peer, !peer.isLoopback, !addresses.isTrustedProxy(peer) else { return }
        uncount(peer)
    }

    /// Uncounts what ``admitForwarded(_:)`` counted.
    func releaseForwarded(_ client: IPAddress) {
        uncount(client)
    }

    private func uncount(_ client: IPAddress) {
        guard let key = addresses.key(client) else { return }
        perAddress.withLock { counts in
            guard let count = counts[key] else { return }
            counts[key] = count > 1 ? count - 1 : nil
        }
    }

    /// Uncounts a connection ``admit(_:)`` refused.
    func releaseRefused() {
        refusing.subtract(1, ordering: .relaxed)
    }

    /// Open connections now.
    var openConnections: Int { open.load(ordering: .relaxed) }
}
