import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Counts open connections, in all and per client address, and decides whether the next one is
/// served or answered 503 (``ConnectionLimits``).
///
/// Contracts: ``admit(_:)`` that returns `nil` has counted the connection, and the caller
/// calls ``release(_:)`` exactly once when it closes; a refused connection is not counted.
/// Loopback peers (`127.0.0.1`, `::1`) are counted in the total only.
final class ConnectionAdmission: Sendable {
    /// The limits in force: the configured ones, with the total lowered to what the process
    /// may open.
    let limits: ConnectionLimits
    private let open = Atomic<Int>(0)
    private let perAddress = Mutex<[AddressKey: Int]>([:])

    init(_ limits: ConnectionLimits, descriptorLimit: Int? = ConnectionAdmission.descriptorLimit()) {
        var limits = limits
        if let descriptorLimit {
            // Listening sockets, log files and the store need descriptors too.
            limits.maxConnections = max(1, min(limits.maxConnections, descriptorLimit - Self.reservedDescriptors))
        }
        self.limits = limits
    }

    /// Descriptors kept for everything but client connections.
    static let reservedDescriptors = 64

    /// The process's soft `RLIMIT_NOFILE`, if it has one that fits an `Int`.
    static func descriptorLimit() -> Int? {
        var limit = rlimit()
        // RLIM_INFINITY is all ones, which Swift cannot import as a literal.
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else { return nil }
        return Int(exactly: limit.rlim_cur)
    }

    /// Counts a connection from `address` and returns `nil`, or returns why it is refused.
    func admit(_ address: SocketAddress?) -> APIError? {
        let total = open.add(1, ordering: .relaxed).newValue
        guard total <= limits.maxConnections else {
            open.subtract(1, ordering: .relaxed)
            return .tooManyConnections(limit: limits.maxConnections, fromOneAddress: false)
        }
        guard let key = AddressKey(address), !key.isLoopback else { return nil }
        let admitted = perAddress.withLock { counts in
            let count = counts[key, default: 0]
            guard count < limits.maxPerAddress else { return false }
            counts[key] = count + 1
            return true
        }
        guard admitted else {
            open.subtract(1, ordering: .relaxed)
            return .tooManyConnections(limit: limits.maxPerAddress, fromOneAddress: true)
        }
        return nil
    }

    /// Uncounts a connection ``admit(_:)`` counted.
    func release(_ address: SocketAddress?) {
        open.subtract(1, ordering: .relaxed)
        guard let key = AddressKey(address), !key.isLoopback else { return }
        perAddress.withLock { counts in
            guard let count = counts[key] else { return }
            counts[key] = count > 1 ? count - 1 : nil
        }
    }

    /// Open connections now.
    var openConnections: Int { open.load(ordering: .relaxed) }
}
