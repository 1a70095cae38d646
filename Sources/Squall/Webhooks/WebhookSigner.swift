// SPDX-License-Identifier: Apache-2.0

import Crypto
import Foundation
import NIOCore

/// Signs a webhook as the Standard Webhooks specification says, so that a receiver verifies it
/// with any library for it: `webhook-id`, `webhook-timestamp` (Unix seconds) and
/// `webhook-signature: v1,BASE64`, the HMAC-SHA256, keyed with the secret's bytes, of
/// `ID.TIMESTAMP.BODY`.
struct WebhookSigner: Sendable {
    private let key: SymmetricKey

    /// A signer with the key a `whsec_` secret stands for.
    init(key: [UInt8]) {
        self.key = SymmetricKey(data: key)
    }

    /// The three headers of `body`, sent as event `id` at `time`.
    func headers(id: String, time: Date, body: ByteBuffer) -> [(name: String, value: String)] {
        let timestamp = String(Int64(time.timeIntervalSince1970.rounded(.down)))  // trap-ok: the server's own clock
        var signed = Data("\(id).\(timestamp).".utf8)
        signed.append(contentsOf: body.readableBytesView)
        let mac = HMAC<SHA256>.authenticationCode(for: signed, using: key)
        return [("webhook-id", id), ("webhook-timestamp", timestamp), ("webhook-signature", "v1," + Data(mac).base64EncodedString())]
    }
}
