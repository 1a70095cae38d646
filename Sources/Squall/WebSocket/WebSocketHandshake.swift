// SPDX-License-Identifier: Apache-2.0

import NIOCore
import NIOHTTP1

/// The opening handshake of RFC 6455 §4.2 as bytes: reading a client's upgrade head (the fast
/// path's strict subset of HTTP/1.1) and writing the server's 101. No socket, no HTTP server:
/// ``HandshakeReader`` does the I/O.
///
/// Contracts: ``read(_:)`` takes only `GET` `HTTP/1.1` heads without a body, with
/// `Upgrade: websocket`, `Connection: upgrade` (each a case-insensitive list), exactly one
/// `Sec-WebSocket-Key` and `Sec-WebSocket-Version: 13`, all ASCII; anything else is `.other`,
/// for a general HTTP parser to judge — except an upgrade that cannot succeed anywhere.
enum WebSocketHandshake {
    /// Longest head the fast path reads; a longer one is NIO's to judge.
    static let maxHeadSize = 8192

    /// An upgrade that cannot succeed, whoever parses it.
    enum HandshakeError: Error, Equatable {
        /// `Sec-WebSocket-Version` is not `13` (the versions offered, comma-separated).
        case unsupportedVersion(String)
        /// Not exactly one `Sec-WebSocket-Key`.
        case invalidKey
    }

    /// The 101 response for `key`, with `headers` added.
    static func switchingProtocols(key: String, headers: HTTPHeaders, allocator: ByteBufferAllocator) -> ByteBuffer {
        var response = allocator.buffer(capacity: 192)
        response.writeStaticString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Accept: ")
        response.writeString(WebSocketAccept.value(forKey: key.utf8))
        response.writeStaticString("\r\n")
        for (name, value) in headers {
            response.writeString(name)
            response.writeStaticString(": ")
            response.writeString(value)
            response.writeStaticString("\r\n")
        }
        response.writeStaticString("\r\n")
        return response
    }

    /// Whether the request line ends within the first ``maxHeadSize`` bytes of `buffer`.
    static func hasLineEnd(_ buffer: ByteBuffer) -> Bool {
        buffer.readableBytesView.prefix(maxHeadSize).contains(0x0A)
    }

    /// The method and target of the request line at the start of `buffer` (`GET`, `/msg`), for
    /// the access log of a request answered before it is parsed; `nil` until the line has ended
    /// or when it is not three words of printable ASCII.
    static func requestLine(_ buffer: ByteBuffer) -> (method: String, target: String)? {
        let line = buffer.readableBytesView.prefix(maxHeadSize)
        guard let end = line.firstIndex(of: 0x0A) else { return nil }
        let words = line[..<end].split(separator: 0x20, omittingEmptySubsequences: false)
        guard words.count == 3, words.allSatisfy({ !$0.isEmpty && $0.allSatisfy { (0x21...0x7E).contains($0) || $0 == 0x0D } }) else { return nil }
        return (String(decoding: words[0], as: UTF8.self), String(decoding: words[1].prefix(256), as: UTF8.self))
    }

    /// Bytes up to and including the blank line that ends the head, if it has all arrived.
    static func headLength(_ buffer: ByteBuffer) -> Int? {
        buffer.withUnsafeReadableBytes { bytes -> Int? in
            guard bytes.count >= 4 else { return nil }
            for index in 3..<bytes.count
            where bytes[index] == 0x0A && bytes[index - 1] == 0x0D && bytes[index - 2] == 0x0A && bytes[index - 3] == 0x0D {
                return index + 1
            }
            return nil
        }
    }

    /// What a first request head is, to the fast path.
    enum FirstRequest {
        /// A WebSocket upgrade the fast path takes (see the type's contract).
        case upgrade(UpgradeRequest)
        /// A WebSocket upgrade that cannot succeed: a version other than 13, or no single key.
        case malformedUpgrade(HandshakeError, uri: String)
        /// Anything else: NIO's to read.
        case other
    }

    /// Reads the head byte by byte (it is all ASCII or it is not the fast path's): Swift's
    /// `String` algorithms work on grapheme clusters, and cost more than the whole handshake.
    static func read(_ bytes: ByteBuffer) -> FirstRequest {
        bytes.withUnsafeReadableBytes { raw -> FirstRequest in
            var cursor = 0
            /// The next line, without its CR LF; `nil` at the end.
            func nextLine() -> Range<Int>? {
                var index = cursor
                while index + 1 < raw.count {
                    if raw[index] == 0x0D, raw[index + 1] == 0x0A {
                        defer { cursor = index + 2 }
                        return cursor..<index
                    }
                    index += 1
                }
                return nil
            }
            func text(_ range: Range<Int>) -> String {
                String(decoding: UnsafeRawBufferPointer(rebasing: raw[range]), as: UTF8.self)
            }
            guard let requestLine = nextLine(), requestLine.count > Self.getPrefix.count + Self.versionSuffix.count,
                raw[requestLine].starts(with: Self.getPrefix), raw[requestLine].suffix(Self.versionSuffix.count).elementsEqual(Self.versionSuffix)
            else { return .other }
            let target = (requestLine.lowerBound + 4)..<(requestLine.upperBound - Self.versionSuffix.count)
            guard raw[target].allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return .other }

            var headers: [(String, String)] = []
            headers.reserveCapacity(12)
            var upgradesToWebSocket = false
            var connectionUpgrade = false
            var versions: [String] = []
            var keys: [String] = []
            var extensionOffers: [String] = []
            var hasBody = false
            while let line = nextLine(), !line.isEmpty {
                guard let colon = raw[line].firstIndex(of: UInt8(ascii: ":")), colon > line.lowerBound,
                    raw[line.lowerBound..<colon].allSatisfy(isTokenByte)
                else { return .other }
                var valueStart = colon + 1
                var valueEnd = line.upperBound
                while valueStart < valueEnd, raw[valueStart] == 0x20 || raw[valueStart] == 0x09 { valueStart += 1 }
                while valueEnd > valueStart, raw[valueEnd - 1] == 0x20 || raw[valueEnd - 1] == 0x09 { valueEnd -= 1 }
                guard raw[valueStart..<valueEnd].allSatisfy({ ($0 >= 0x20 && $0 < 0x7F) || $0 == 0x09 }) else { return .other }
                let name = raw[line.lowerBound..<colon]
                let value = raw[valueStart..<valueEnd]
                // The fields the fast path decides on, read as bytes: looking them up in
                // HTTPHeaders afterwards cost more than the rest of the parse.
                if Self.equalsIgnoringCase(name, "upgrade") {
                    upgradesToWebSocket = upgradesToWebSocket || Self.listContains(value, "websocket")
                } else if Self.equalsIgnoringCase(name, "connection") {
                    connectionUpgrade = connectionUpgrade || Self.listContains(value, "upgrade")
                } else if Self.equalsIgnoringCase(name, "sec-websocket-version") {
                    versions.append(text(valueStart..<valueEnd))
                } else if Self.equalsIgnoringCase(name, "sec-websocket-key") {
                    keys.append(text(valueStart..<valueEnd))
                } else if Self.equalsIgnoringCase(name, "sec-websocket-extensions") {
                    extensionOffers.append(text(valueStart..<valueEnd))
                } else {
                    if Self.equalsIgnoringCase(name, "content-length") {
                        hasBody = hasBody || !value.elementsEqual("0".utf8)
                    } else if Self.equalsIgnoringCase(name, "transfer-encoding") {
                        hasBody = true
                    }
                    // Kept for the connection's handlers (see UpgradeRequest).
                    headers.append((text(line.lowerBound..<colon), text(valueStart..<valueEnd)))
                }
            }
            let uri = text(target)
            guard !hasBody, upgradesToWebSocket, connectionUpgrade else { return .other }
            // The kept fields live as long as the connection: in an array of their own size, not
            // the dozen reserved while parsing (a client that sends only Host would otherwise
            // hold 400 bytes for nothing).
            var kept: [(String, String)] = []
            kept.reserveCapacity(headers.count)
            kept.append(contentsOf: headers)
            guard versions == ["13"] else {
                return .malformedUpgrade(.unsupportedVersion(versions.joined(separator: ",")), uri: uri)
            }
            guard keys.count == 1 else { return .malformedUpgrade(.invalidKey, uri: uri) }
            return .upgrade(
                UpgradeRequest(
                    head: HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: HTTPHeaders(kept)),
                    key: keys[0],
                    extensionOffers: extensionOffers
                )
            )
        }
    }

    /// Whether `bytes` are `lowercase` (ASCII letters in lower case), ignoring case.
    private static func equalsIgnoringCase(_ bytes: Slice<UnsafeRawBufferPointer>, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        return lowercase.withUTF8Buffer { expected in
            zip(bytes, expected).allSatisfy { byte, expected in byte | 0x20 == expected || byte == expected }
        }
    }

    /// Whether a comma-separated header value lists `lowercase`, ignoring case and whitespace.
    private static func listContains(_ value: Slice<UnsafeRawBufferPointer>, _ lowercase: StaticString) -> Bool {
        value.split(separator: UInt8(ascii: ",")).contains { element in
            var element = element[...]
            while let first = element.first, first == 0x20 || first == 0x09 { element = element.dropFirst() }
            while let last = element.last, last == 0x20 || last == 0x09 { element = element.dropLast() }
            return element.count == lowercase.utf8CodeUnitCount
                && lowercase.withUTF8Buffer { expected in zip(element, expected).allSatisfy { $0 | 0x20 == $1 || $0 == $1 } }
        }
    }

    private static let getPrefix: [UInt8] = Array("GET /".utf8)
    private static let versionSuffix: [UInt8] = Array(" HTTP/1.1".utf8)

    /// A byte of an HTTP token (RFC 9110 §5.6.2): a visible ASCII character other than a
    /// delimiter.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }
}
