// SPDX-License-Identifier: Apache-2.0

/// Why a publish was not appended.
public enum PublishError: Error, Sendable, CustomStringConvertible {
    /// The store could not take or commit it (`store_unavailable`, HTTP 503); nothing was
    /// published, and a retry with the same idempotency key is safe.
    case storeUnavailable(StoreError)
    /// Its idempotency key already named another publish on the channel, with another payload
    /// (`idempotency_key_reused`, HTTP 422), as the IETF Idempotency-Key draft and Stripe do.
    case idempotencyKeyReused

    public var description: String {
        switch self {
        case .storeUnavailable(let error): "store unavailable: \(error)"
        case .idempotencyKeyReused: "the idempotency key was used for another payload"
        }
    }
}
