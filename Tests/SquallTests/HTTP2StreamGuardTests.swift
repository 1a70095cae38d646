// SPDX-License-Identifier: Apache-2.0

import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import Testing

@testable import Squall

/// ``HTTP2StreamGuard`` on an embedded stream channel: its timers, without sockets or TLS.
/// (A real HTTP/2 client stalls real streams in Tests/e2e/test_tls.py.)
@Suite struct HTTP2StreamGuardTests {
    static func stream() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTP2StreamGuard(bodyTimeout: .seconds(1), writeTimeout: .seconds(1)))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8000)).wait()
        return channel
    }

    static let post = HTTPRequest(method: .post, scheme: "https", authority: "127.0.0.1", path: "/channels/room/messages")

    @Test func aBodyThatDoesNotArriveInTimeResetsTheStream() throws {
        let channel = try Self.stream()
        try channel.writeInbound(HTTPRequestPart.head(Self.post))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(999))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(2))
        #expect(!channel.isActive)
    }

    @Test func aRequestReadToItsEndAndAnsweredIsNeverCut() throws {
        let channel = try Self.stream()
        try channel.writeInbound(HTTPRequestPart.head(Self.post))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .created)))
        try channel.writeOutbound(HTTPResponsePart.end(nil))
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        #expect(channel.isActive)
        _ = try channel.finish()
    }

    @Test func aResponseWhoseEndIsHeldBackPastTheWriteTimeoutResetsTheStream() throws {
        let channel = try Self.stream()
        try channel.writeInbound(HTTPRequestPart.head(Self.post))
        try channel.writeInbound(HTTPRequestPart.end(nil))
        // Written but not flushed: the end waits, as flow control makes it wait.
        channel.write(HTTPResponsePart.end(nil), promise: nil)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1001))
        #expect(!channel.isActive)
    }
}
