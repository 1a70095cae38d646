// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore
import SquallCore
import Testing

@testable import Squall

/// The message envelope is written by hand for speed; clients must not be able to tell. These
/// hold it to what Foundation's `JSONEncoder` wrote for the same message, byte for byte, and to
/// what a JSON parser reads back.
@Suite("The JSON message envelope")
struct JSONEnvelopeTests {
    /// The envelope as it was encoded before: the reference.
    struct Reference: Encodable {
        var type = "message"
        let channel: String
        let id: UUID
        let epoch: String
        let offset: UInt64
        let time: Int64
        let publisher: UUID?
        let data: String
        let encoding: String?
    }

    static let texts: [String] = [
        "", "hello", #"quote " backslash \ slash / </script>"#, "tab\tnewline\nreturn\rbackspace\u{08}formfeed\u{0C}",
        "nul \u{00} unit separator \u{1F} delete \u{7F}", "café ünïcödé 日本語 🙂👍🏽", "line\u{2028}separator\u{2029}",
        String(repeating: "x", count: 300) + "\"" + String(repeating: "\\", count: 3),
    ]

    @Test("text and binary messages, with and without a publisher, encode as JSONEncoder did", arguments: texts)
    func sameBytesAsJSONEncoder(text: String) async throws {
        let hub = Hub()
        let channel = try ChannelName("room:1")
        for payload in [Payload.text(text), Payload.binary(ByteBuffer(string: text))] {
            for publisher in [nil, UUID()] {
                let message = try await hub.publish(payload, to: channel, publisher: publisher)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                let isText = payload.kind == .text
                let expected = try encoder.encode(
                    Reference(
                        channel: channel.rawValue,
                        id: message.id,
                        epoch: message.position.epoch,
                        offset: message.offset,
                        time: message.unixMilliseconds,
                        publisher: publisher,
                        data: isText ? text : Data(text.utf8).base64EncodedString(),
                        encoding: isText ? nil : "base64"
                    )
                )
                let written = JSONEnvelope.encode(message)
                #expect(Array(written.readableBytesView) == Array(expected), "\(String(buffer: written))")
                let parsed = try #require(try JSONSerialization.jsonObject(with: Data(written.readableBytesView)) as? [String: Any])
                #expect(parsed["data"] as? String == (isText ? text : Data(text.utf8).base64EncodedString()))
            }
        }
    }
}
