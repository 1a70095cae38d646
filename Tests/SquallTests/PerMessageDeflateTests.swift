// SPDX-License-Identifier: Apache-2.0

import NIOCore
import Testing

@testable import Squall

/// permessage-deflate's negotiation (which offers Squall takes) and its one-message codec.
@Suite struct PerMessageDeflateTests {
    static let acceptedOffers: [[String]] = [
        ["permessage-deflate"],
        ["PerMessage-Deflate"],
        ["permessage-deflate; client_max_window_bits"],
        ["permessage-deflate; client_max_window_bits=8"],
        ["permessage-deflate; client_max_window_bits=15"],
        ["permessage-deflate; client_max_window_bits=\"10\""],
        ["permessage-deflate; server_max_window_bits=15"],
        ["permessage-deflate; server_no_context_takeover"],
        ["permessage-deflate; client_no_context_takeover"],
        ["permessage-deflate;server_no_context_takeover;client_no_context_takeover;client_max_window_bits"],
        ["permessage-deflate ; client_max_window_bits = 12"],
        ["x-webkit-deflate-frame, permessage-deflate"],
        ["permessage-deflate; server_max_window_bits=10, permessage-deflate"],
        ["x-unknown", "permessage-deflate"],
    ]

    @Test(arguments: acceptedOffers)
    func theseOffersAreAccepted(_ offers: [String]) {
        #expect(PerMessageDeflate.accepts(offers))
    }

    static let declinedOffers: [[String]] = [
        [],
        [""],
        ["deflate-frame"],
        ["permessage-deflate;"],
        ["permessage-deflate; unknown_parameter"],
        ["permessage-deflate; server_max_window_bits"],
        ["permessage-deflate; server_max_window_bits=7"],
        ["permessage-deflate; server_max_window_bits=16"],
        ["permessage-deflate; server_max_window_bits=09"],
        ["permessage-deflate; server_max_window_bits="],
        ["permessage-deflate; client_max_window_bits=7"],
        ["permessage-deflate; client_max_window_bits=16"],
        ["permessage-deflate; client_max_window_bits=015"],
        ["permessage-deflate; client_max_window_bits=+9"],
        ["permessage-deflate; client_max_window_bits=a"],
        ["permessage-deflate; client_max_window_bits=\"1 5\""],
        ["permessage-deflate; server_no_context_takeover=1"],
        ["permessage-deflate; client_no_context_takeover; client_no_context_takeover"],
        ["permessage-deflate; client_max_window_bits=9; client_max_window_bits=10"],
        ["permessage-deflate; =15"],
        ["permessage-deflate; a=b=c"],
    ]

    @Test(arguments: declinedOffers)
    func theseOffersAreDeclined(_ offers: [String]) {
        #expect(!PerMessageDeflate.accepts(offers))
    }

    static let windows: [([String], DeflateWindow)] = [
        (["permessage-deflate"], .bits15),
        (["permessage-deflate; server_max_window_bits=15"], .bits15),
        (["permessage-deflate; server_max_window_bits=8"], .bits8),
        (["permessage-deflate; server_max_window_bits=9"], .bits9),
        (["permessage-deflate; server_max_window_bits=\"12\"; client_max_window_bits"], .bits12),
        (["permessage-deflate; server_max_window_bits=10, permessage-deflate"], .bits10),
        (["permessage-deflate; server_max_window_bits=99, permessage-deflate; server_max_window_bits=11"], .bits11),
    ]

    @Test(arguments: windows)
    func theFirstAcceptableOfferNamesTheWindow(_ offers: [String], _ window: DeflateWindow) {
        #expect(PerMessageDeflate.negotiate(offers)?.window == window)
    }

    @Test func theAnswerNamesTheWindowWhenTheOfferDid() throws {
        let terms = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        let answers = try [
            "permessage-deflate", "permessage-deflate; server_max_window_bits=15", "permessage-deflate; server_max_window_bits=9",
            "permessage-deflate; server_max_window_bits=8; client_max_window_bits",
        ].map { try #require(PerMessageDeflate.negotiate([$0])).response }
        #expect(
            answers == [
                terms, terms + "; server_max_window_bits=15", terms + "; server_max_window_bits=9", terms + "; server_max_window_bits=8",
            ])
    }

    @Test(arguments: DeflateWindow.allCases)
    func everyWindowButEightCompressesAndInflates(_ window: DeflateWindow) throws {
        let text = ByteBuffer(string: (0..<200).map { "message \($0 % 17) of the lobby" }.joined(separator: ", "))
        guard window.compresses else {
            #expect(PerMessageDeflate.compress(text, window: window) == nil)
            return
        }
        let compressed = try #require(PerMessageDeflate.compress(text, window: window))
        #expect(compressed.readableBytes < text.readableBytes)
        #expect(try PerMessageDeflate.inflate(compressed, limit: text.readableBytes) == text)
    }

    static let parsedLists: [(String, [String])] = [
        ("a", ["a"]),
        ("A; B", ["a B"]),
        ("a; b=1; c=\"x\", d", ["a b=1 c=x", "d"]),
        ("a ;  b = 2 ,d", ["a b=2", "d"]),
        ("a, , b", ["a", "b"]),
        ("a; b=\"x,y\", c", ["c"]),
        ("a; b=\"\"", []),
        ("a;; b", []),
        ("a/b", []),
        ("", []),
    ]

    @Test(arguments: parsedLists)
    func anExtensionsListParsesIntoItsEntries(_ header: String, _ expected: [String]) {
        let entries = ExtensionOffer.parse(header).map { offer in
            ([offer.name] + offer.parameters.map { name, value in value.map { "\(name)=\($0)" } ?? name }).joined(separator: " ")
        }
        #expect(entries == expected, "\(header)")
    }

    @Test func aCompressedMessageInflatesToItself() throws {
        let text = ByteBuffer(string: String(repeating: "squall ", count: 200))
        let compressed = try #require(PerMessageDeflate.compress(text))
        #expect(compressed.readableBytes < text.readableBytes)
        #expect(try PerMessageDeflate.inflate(compressed, limit: text.readableBytes) == text)
    }

    @Test func whatCompressionWouldNotShrinkIsNotCompressed() {
        #expect(PerMessageDeflate.compress(ByteBuffer()) == nil)
        #expect(PerMessageDeflate.compress(ByteBuffer(string: "ab")) == nil)
    }

    @Test func aMessageThatInflatesPastTheLimitIsTooBig() throws {
        let text = ByteBuffer(string: String(repeating: "a", count: 10_000))
        let compressed = try #require(PerMessageDeflate.compress(text))
        #expect(throws: PerMessageDeflate.InflateError.tooBig) {
            try PerMessageDeflate.inflate(compressed, limit: 9_999)
        }
    }

    @Test func bytesThatAreNotDeflateAreCorrupt() {
        #expect(throws: PerMessageDeflate.InflateError.corrupt) {
            try PerMessageDeflate.inflate(ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF]), limit: 1024)
        }
    }
}
