// SPDX-License-Identifier: Apache-2.0

/// The `Sec-WebSocket-Accept` value answering a `Sec-WebSocket-Key` (RFC 6455 §4.2.2): the
/// base64 of the SHA-1 of the key followed by the protocol's GUID.
///
/// Written here because NIO's SHA-1 is internal to NIOWebSocket, and swift-crypto would add
/// BoringSSL to every build for one 20-byte hash per handshake. SHA-1 is not used for security
/// here — the value only proves the server read the request as WebSocket.
enum WebSocketAccept {
    private static let guid = Array("258EAFA5-E914-47DA-95CA-C5AB0DC85B11".utf8)

    /// The accept value for `key`, exactly as sent (no trimming: the caller has trimmed it).
    static func value(forKey key: some Collection<UInt8>) -> String {
        var message: [UInt8] = []
        message.reserveCapacity(key.count + guid.count + 72)
        message.append(contentsOf: key)
        message.append(contentsOf: guid)
        let digest = sha1(padding: &message)
        // Base64 of the 20-byte digest: seven groups of three bytes (the last one short by one,
        // hence one `=`), 28 characters. Not Foundation's `base64EncodedString()`: its `Data`
        // and `String` copies slowed the whole upgrade read (docs/benchmarks.md, "Figures behind
        // design choices").
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 21) { bytes in
            for index in 0..<20 { bytes[index] = UInt8(truncatingIfNeeded: digest[index / 4] >> (24 - 8 * UInt32(index % 4))) }
            bytes[20] = 0
            return String(unsafeUninitializedCapacity: 28) { out in
                for group in 0..<7 {
                    let value = Int(bytes[3 * group]) << 16 | Int(bytes[3 * group + 1]) << 8 | Int(bytes[3 * group + 2])
                    out[4 * group] = alphabet[value >> 18 & 63]
                    out[4 * group + 1] = alphabet[value >> 12 & 63]
                    out[4 * group + 2] = alphabet[value >> 6 & 63]
                    out[4 * group + 3] = alphabet[value & 63]
                }
                out[27] = UInt8(ascii: "=")
                return 28
            }
        }
    }

    /// SHA-1 (FIPS 180-4) of `message`, which it pads in place; the digest as five big-endian
    /// words.
    static func sha1(padding message: inout [UInt8]) -> [UInt32] {
        let bits = UInt64(message.count) * 8
        message.append(0x80)
        while message.count % 64 != 56 { message.append(0) }
        for shift in stride(from: 56, through: 0, by: -8) { message.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }

        var h: [UInt32] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0]
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 80) { w in
            for block in stride(from: 0, to: message.count, by: 64) {
                for t in 0..<16 {
                    let i = block + 4 * t
                    w[t] = UInt32(message[i]) << 24 | UInt32(message[i + 1]) << 16 | UInt32(message[i + 2]) << 8 | UInt32(message[i + 3])
                }
                for t in 16..<80 { w[t] = rotate(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1) }
                var (a, b, c, d, e) = (h[0], h[1], h[2], h[3], h[4])
                for t in 0..<80 {
                    let (f, k): (UInt32, UInt32) =
                        switch t {
                        case 0..<20: ((b & c) | (~b & d), 0x5A82_7999)
                        case 20..<40: (b ^ c ^ d, 0x6ED9_EBA1)
                        case 40..<60: ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC)
                        default: (b ^ c ^ d, 0xCA62_C1D6)
                        }
                    let temp = rotate(a, 5) &+ f &+ e &+ k &+ w[t]
                    (e, d, c, b, a) = (d, c, rotate(b, 30), a, temp)
                }
                h[0] &+= a
                h[1] &+= b
                h[2] &+= c
                h[3] &+= d
                h[4] &+= e
            }
        }
        return h
    }

    private static func rotate(_ value: UInt32, _ count: UInt32) -> UInt32 {
        value << count | value >> (32 - count)
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
}
