// SPDX-License-Identifier: Apache-2.0

/// The LZ77 window Squall compresses one connection's messages with: the
/// `server_max_window_bits` agreed in the handshake (RFC 7692 §7.1.2.1), 15 (32 KiB) unless the
/// client asked for a smaller one.
///
/// Contract: every window but 8 compresses with exactly that window. zlib's raw deflate has no
/// 256-byte window — it turns a request for 8 into 9 (its manual, `deflateInit2`), whose
/// back-references a client holding 256 bytes could not follow — so on an 8-bit window Squall
/// sends every message uncompressed, which RFC 7692 allows message by message.
enum DeflateWindow: UInt8, Sendable, CaseIterable {
    case bits8 = 8
    case bits9, bits10, bits11, bits12, bits13, bits14, bits15

    /// Whether zlib compresses with this window (every one but 8).
    var compresses: Bool { self != .bits8 }
}
