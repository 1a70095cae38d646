// SPDX-License-Identifier: Apache-2.0

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The process's descriptor limit (`RLIMIT_NOFILE`), which bounds its connections: every client
/// holds one descriptor.
///
/// Contracts: `squall serve` raises the soft limit to the hard one before it listens — the soft
/// limit is a default for programs that do not ask (often 1,024), the hard one what the
/// administrator allows — and never tries past the hard limit, which needs a privilege it
/// should not have (docs/deployment.md says how to raise it: `LimitNOFILE`, `fs.nr_open`).
/// An embedder's process keeps its own limits: this is the program's, not the library's.
enum DescriptorLimit {
    /// Descriptors kept for what is not a client: listening sockets, each event loop's epoll
    /// and wake-up descriptors, the store's files or database connections, webhook and hook
    /// clients, the log.
    static let reserved = 256

    /// The soft and hard limits after raising the soft to the hard; `before` is the soft limit
    /// found, when it was lower.
    struct Raised {
        let before: UInt64?
        let soft: UInt64
        let hard: UInt64

        /// Connections the soft limit leaves room for.
        var connections: Int { Int(clamping: soft) - DescriptorLimit.reserved }
    }

    static func raise() -> Raised? {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return nil }
        let found = UInt64(limit.rlim_cur)
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(resource, &raised) == 0 { limit = raised }
        }
        let soft = UInt64(limit.rlim_cur)
        return Raised(before: soft > found ? found : nil, soft: soft, hard: UInt64(limit.rlim_max))
    }

    #if canImport(Glibc)
        private static let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
        private static let resource = RLIMIT_NOFILE
    #endif
}
