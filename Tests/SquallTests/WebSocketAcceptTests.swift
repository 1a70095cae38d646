// SPDX-License-Identifier: Apache-2.0

import Testing

@testable import Squall

/// `Sec-WebSocket-Accept` and the SHA-1 under it, against published vectors and values made
/// with Python's hashlib and base64.
@Suite struct WebSocketAcceptTests {
    @Test func theRFC6455ExampleKeyGetsTheRFCsAnswer() {
        #expect(WebSocketAccept.value(forKey: "dGhlIHNhbXBsZSBub25jZQ==".utf8) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    static let accepts: [(String, String)] = [
        ("x3JJHMbDL1EzLkh9GBhXDw==", "HSmrc0sMlYUkAGmm5OPpG2HaGWk="),
        ("AAAAAAAAAAAAAAAAAAAAAA==", "ICX+Yqv66kxgM0FcWaLWlFLwTAI="),
        ("", "Kfh9QIsMVZcl6xEPYxPHzW8SZ8w="),
        ("not base64 at all, any bytes", "6S1MQHZNS3CAVQNhBrTONLp3G34="),
    ]

    @Test(arguments: accepts)
    func anyKeyIsAnsweredAsPythonAnswersIt(_ key: String, _ accept: String) {
        #expect(WebSocketAccept.value(forKey: key.utf8) == accept)
    }

    /// FIPS 180-4's examples, then runs of `a` on each side of the 55/56/64-byte padding edges.
    static let digests: [(String, String)] = [
        ("abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "84983e441c3bd26ebaae4aa1f95129e5e54670f1"),
        ("", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        (String(repeating: "a", count: 1), "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8"),
        (String(repeating: "a", count: 55), "c1c8bbdc22796e28c0e15163d20899b65621d65a"),
        (String(repeating: "a", count: 56), "c2db330f6083854c99d4b5bfb6e8f29f201be699"),
        (String(repeating: "a", count: 63), "03f09f5b158a7a8cdad920bddc29b81c18a551f5"),
        (String(repeating: "a", count: 64), "0098ba824b5c16427bd7a1122a5a442a25ec644d"),
        (String(repeating: "a", count: 65), "11655326c708d70319be2610e8a57d9a5b959d3b"),
        (String(repeating: "a", count: 119), "ee971065aaa017e0632a8ca6c77bb3bf8b1dfc56"),
        (String(repeating: "a", count: 128), "ad5b3fdbcb526778c2839d2f151ea753995e26a0"),
        (String(repeating: "a", count: 1000), "291e9a6c66994949b57ba5e650361e98fc36b1ba"),
    ]

    @Test(arguments: digests)
    func sha1MatchesTheKnownDigest(_ message: String, _ hex: String) {
        var bytes = Array(message.utf8)
        let digest = WebSocketAccept.sha1(padding: &bytes)
        #expect(digest.map { word in String(word, radix: 16).leftPadded(to: 8) }.joined() == hex, "\(message.utf8.count) bytes")
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}
