// SPDX-License-Identifier: Apache-2.0

/// A 64-bit digest of a payload (its kind and bytes), keyed per process (Swift's `Hasher`,
/// SipHash), so that an idempotency key remembers what it published in 8 bytes instead of the
/// payload. A stranger cannot aim a collision at it without the process's key; a chance
/// collision would only make a reused key look like a retry.
struct PayloadFingerprint: Hashable, Sendable {
    private let value: Int

    init(_ payload: Payload) {
        var hasher = Hasher()
        hasher.combine(payload.kind)
        payload.bytes.withUnsafeReadableBytes { hasher.combine(bytes: $0) }
        value = hasher.finalize()
    }
}

extension Payload {
    /// This payload's ``PayloadFingerprint``.
    var fingerprint: PayloadFingerprint { PayloadFingerprint(self) }
}
