// SPDX-License-Identifier: Apache-2.0

extension Duration {
    /// `seconds` (finite, not negative) to the millisecond, and no more than `limit`.
    ///
    /// Clamped before it is converted, so that no value a client or a command line can write —
    /// `1e16`, `1e300` — reaches a conversion that traps.
    public init(seconds: Double, atMost limit: Duration) {
        let limitMilliseconds = Double(limit.components.seconds) * 1000 + Double(limit.components.attoseconds) / 1e15
        guard seconds.isFinite, seconds > 0 else {
            self = .zero
            return
        }
        let milliseconds = min((seconds * 1000).rounded(), limitMilliseconds)
        guard milliseconds < limitMilliseconds, let whole = Int64(exactly: milliseconds) else {
            self = limit
            return
        }
        self = .milliseconds(whole)
    }
}

extension Duration {
    /// The duration in seconds, as a `Date` interval takes it.
    public var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
