// SPDX-License-Identifier: Apache-2.0

import NIOCore
import NIOHTTP1
import Testing

@testable import Squall

/// The fast path's reading of an upgrade head, table by table and without sockets: what it takes,
/// what it leaves to NIO's parser, and which upgrades it refuses outright.
@Suite struct WebSocketHandshakeTests {
    static let key = "dGhlIHNhbXBsZSBub25jZQ=="

    /// An upgrade head for `/msg` with `fields` in place of the usual ones (nil keeps them).
    static func head(requestLine: String = "GET /msg HTTP/1.1", fields: [String]? = nil) -> ByteBuffer {
        let lines =
            fields ?? [
                "Host: 127.0.0.1:8000", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: \(key)",
                "Sec-WebSocket-Version: 13",
            ]
        return ByteBuffer(string: ([requestLine] + lines).joined(separator: "\r\n") + "\r\n\r\n")
    }

    /// The usual fields with `replacing` swapped in by name and `adding` appended.
    static func fields(replacing: [String: String] = [:], removing: Set<String> = [], adding: [String] = []) -> [String] {
        let base: [(String, String)] = [
            ("Host", "127.0.0.1:8000"), ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", "13"),
        ]
        return base.compactMap { name, value in
            removing.contains(name) ? nil : "\(name): \(replacing[name] ?? value)"
        } + adding
    }

    func upgrade(_ head: ByteBuffer) -> UpgradeRequest? {
        guard case .upgrade(let request) = WebSocketHandshake.read(head) else { return nil }
        return request
    }

    @Test func aPlainUpgradeIsTakenWithItsTargetKeyAndOtherFields() throws {
        let request = try #require(upgrade(Self.head()))
        #expect(request.head.uri == "/msg")
        #expect(request.head.method == .GET)
        #expect(request.key == Self.key)
        #expect(request.extensionOffers.isEmpty)
        #expect(request.head.headers.map(\.name) == ["Host"], "the handshake-only fields are not kept")
    }

    static let acceptedFieldSets: [(String, [String])] = [
        ("names in any case", ["host: x", "UPGRADE: websocket", "connection: Upgrade", "SEC-WEBSOCKET-KEY: \(key)", "sec-websocket-version: 13"]),
        ("values in any case", fields(replacing: ["Upgrade": "WebSocket", "Connection": "UPGRADE"])),
        ("Connection as a list", fields(replacing: ["Connection": "keep-alive, Upgrade"])),
        ("Upgrade as a list", fields(replacing: ["Upgrade": "h2c, websocket"])),
        ("odd whitespace in lists", fields(replacing: ["Connection": "keep-alive ,\tupgrade \t", "Upgrade": " websocket"])),
        ("no space after the colon", ["Host:x", "Upgrade:websocket", "Connection:upgrade", "Sec-WebSocket-Key:\(key)", "Sec-WebSocket-Version:13"]),
        ("Connection given twice", fields(adding: ["Connection: keep-alive"])),
        ("an empty body declared", fields(adding: ["Content-Length: 0"])),
        ("a tab inside a value", fields(adding: ["X-Note: a\tb"])),
    ]

    @Test(arguments: acceptedFieldSets)
    func theseHeadsAreUpgrades(_ name: String, _ fields: [String]) throws {
        let request = try #require(upgrade(Self.head(fields: fields)), "\(name)")
        #expect(request.key == Self.key)
    }

    @Test func theKeyIsTrimmedOfSpacesAndTabs() throws {
        let request = try #require(upgrade(Self.head(fields: Self.fields(replacing: ["Sec-WebSocket-Key": " \t\(Self.key) \t"]))))
        #expect(request.key == Self.key)
    }

    @Test func everyExtensionsFieldIsKeptInOrder() throws {
        let fields = Self.fields(adding: ["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits", "sec-websocket-extensions: x-other"])
        let request = try #require(upgrade(Self.head(fields: fields)))
        #expect(request.extensionOffers == ["permessage-deflate; client_max_window_bits", "x-other"])
    }

    @Test func aQueryStaysInTheTarget() throws {
        let request = try #require(upgrade(Self.head(requestLine: "GET /ws?token=a%20b HTTP/1.1")))
        #expect(request.head.uri == "/ws?token=a%20b")
    }

    static let headsForNIO: [(String, ByteBuffer)] = [
        ("a POST", head(requestLine: "POST /msg HTTP/1.1")),
        ("HTTP/1.0", head(requestLine: "GET /msg HTTP/1.0")),
        ("a lowercase method", head(requestLine: "get /msg HTTP/1.1")),
        ("an absolute-form target", head(requestLine: "GET http://x/msg HTTP/1.1")),
        ("a space inside the target", head(requestLine: "GET /m sg HTTP/1.1")),
        ("a control byte in the target", head(requestLine: "GET /m\u{01}sg HTTP/1.1")),
        ("a non-ASCII target", head(requestLine: "GET /müsli HTTP/1.1")),
        ("no Upgrade field", head(fields: fields(removing: ["Upgrade"]))),
        ("an upgrade to something else", head(fields: fields(replacing: ["Upgrade": "h2c"]))),
        ("Upgrade: websocketx", head(fields: fields(replacing: ["Upgrade": "websocketx"]))),
        ("no Connection: upgrade", head(fields: fields(replacing: ["Connection": "keep-alive"]))),
        ("Connection: upgraded", head(fields: fields(replacing: ["Connection": "upgraded"]))),
        ("a body by Content-Length", head(fields: fields(adding: ["Content-Length: 5"]))),
        ("a chunked body", head(fields: fields(adding: ["Transfer-Encoding: chunked"]))),
        ("a field without a colon", head(fields: fields(adding: ["X-Broken"]))),
        ("a field with an empty name", head(fields: fields(adding: [": value"]))),
        ("a space in a field name", head(fields: fields(adding: ["Bad Name: value"]))),
        ("a space before the colon", head(fields: fields(adding: ["X-Name : value"]))),
        ("a non-ASCII value", head(fields: fields(adding: ["X-Name: café"]))),
        ("a control byte in a value", head(fields: fields(adding: ["X-Name: a\u{07}b"]))),
        ("no request line", ByteBuffer(string: "\r\n\r\n")),
        ("nothing", ByteBuffer()),
    ]

    @Test(arguments: headsForNIO)
    func theseHeadsAreLeftToNIO(_ name: String, _ head: ByteBuffer) {
        guard case .other = WebSocketHandshake.read(head) else {
            Issue.record("\(name) was not left to NIO")
            return
        }
    }

    static let refusedUpgrades: [(String, [String], WebSocketHandshake.HandshakeError)] = [
        ("version 8", fields(replacing: ["Sec-WebSocket-Version": "8"]), .unsupportedVersion("8")),
        ("no version", fields(removing: ["Sec-WebSocket-Version"]), .unsupportedVersion("")),
        ("two versions", fields(adding: ["Sec-WebSocket-Version: 8"]), .unsupportedVersion("13,8")),
        ("versions as a list", fields(replacing: ["Sec-WebSocket-Version": "13, 8"]), .unsupportedVersion("13, 8")),
        ("no key", fields(removing: ["Sec-WebSocket-Key"]), .invalidKey),
        ("two keys", fields(adding: ["sec-websocket-key: \(key)"]), .invalidKey),
    ]

    @Test(arguments: refusedUpgrades)
    func theseUpgradesCannotSucceed(_ name: String, _ fields: [String], _ error: WebSocketHandshake.HandshakeError) {
        guard case .malformedUpgrade(let found, let uri) = WebSocketHandshake.read(Self.head(fields: fields)) else {
            Issue.record("\(name) was not refused")
            return
        }
        #expect(found == error, "\(name)")
        #expect(uri == "/msg")
    }

    static let headLengths: [(String, Int?)] = [
        ("", nil),
        ("GET", nil),
        ("\r\n\r\n", 4),
        ("GET / HTTP/1.1\r\n\r\n", 18),
        ("GET / HTTP/1.1\r\nHost: x\r\n\r\nbody after the head", 27),
        ("GET / HTTP/1.1\r\nHost: x\r\n", nil),
        ("GET / HTTP/1.1\n\n", nil),
        ("GET / HTTP/1.1\r\n\n\r\n", nil),
    ]

    @Test(arguments: headLengths)
    func theHeadEndsAtTheFirstBlankLine(_ bytes: String, _ length: Int?) {
        #expect(WebSocketHandshake.headLength(ByteBuffer(string: bytes)) == length)
    }

    @Test func aRequestLineEndsWithinTheHeadLimitOrNotAtAll() {
        let limit = WebSocketHandshake.maxHeadSize
        #expect(WebSocketHandshake.hasLineEnd(ByteBuffer(string: "GET / HTTP/1.1\n")))
        #expect(!WebSocketHandshake.hasLineEnd(ByteBuffer(string: "GET /")))
        #expect(WebSocketHandshake.hasLineEnd(ByteBuffer(string: String(repeating: "a", count: limit - 1) + "\n")))
        #expect(!WebSocketHandshake.hasLineEnd(ByteBuffer(string: String(repeating: "a", count: limit) + "\n")))
    }

    @Test func theSwitchingProtocolsResponseCarriesTheAcceptValueAndExtraHeaders() {
        let response = WebSocketHandshake.switchingProtocols(
            key: Self.key,
            headers: ["Sec-WebSocket-Protocol": "squall.v1", "Sec-WebSocket-Extensions": "permessage-deflate"],
            allocator: ByteBufferAllocator()
        )
        #expect(
            String(buffer: response)
                == "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
                + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: squall.v1\r\n"
                + "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
        )
    }
}
