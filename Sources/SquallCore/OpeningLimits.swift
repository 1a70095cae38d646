// SPDX-License-Identifier: Apache-2.0

/// How many channels' logs a ``Hub`` reads from its store at once, and how long a request waits
/// for one (``ChannelOpener``).
public struct OpeningLimits: Sendable, Hashable {
    /// Most reads of the store at once. Default 4.
    public var maxReads: Int
    /// Most channels one read asks for. Default 256.
    public var maxBatch: Int
    /// Most channels waiting for a read; past it a request is refused at once. Default 16,384.
    public var maxWaiting: Int
    /// Longest a request waits for a channel's log before it is told `store_unavailable`.
    /// Default 3 s.
    public var timeout: Duration

    /// Limits; every default as documented on each property.
    public init(maxReads: Int = 4, maxBatch: Int = 256, maxWaiting: Int = 16_384, timeout: Duration = .seconds(3)) {
        self.maxReads = max(1, maxReads)
        self.maxBatch = max(1, maxBatch)
        self.maxWaiting = max(1, maxWaiting)
        self.timeout = timeout
    }
}
