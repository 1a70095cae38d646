// SPDX-License-Identifier: Apache-2.0

import Foundation
import Hummingbird
import HummingbirdCore
import NIOCore
import SquallCore

/// Squall's hand-written parsers, each as one call a fuzzer makes with arbitrary bytes: the
/// libFuzzer harness in `fuzz/` runs them (`fuzz/run`). Not a public API:
/// `@_spi(Fuzzing) import Squall`.
///
/// Each target feeds the bytes to the parser as input from a client would reach it and checks
/// what must hold whatever the input: no trap, and answers that agree with themselves.
@_spi(Fuzzing)
public enum FuzzTargets {
    /// The targets by name, as `fuzz/run` selects them.
    public static let all: [String: @Sendable (UnsafeRawBufferPointer) -> Void] = [
        "frames": frames,
        "handshake": handshake,
        "deflate-offer": deflateOffer,
        "inflate": inflate,
        "query": query,
        "request": request,
        "token": token,
    ]

    /// WebSocket frames, cut at every split a network could make of them: the first byte says
    /// where the stream is cut in two.
    static func frames(_ data: UnsafeRawBufferPointer) {
        guard let cut = data.first else { return }
        let bytes = Array(data.dropFirst())
        let split = bytes.isEmpty ? 0 : Int(cut) % (bytes.count + 1)
        var whole = WebSocketFrameParser(maxFrameSize: 4096)
        var pieces = WebSocketFrameParser(maxFrameSize: 4096)
        whole.append(ByteBuffer(bytes: bytes))
        pieces.append(ByteBuffer(bytes: bytes[..<split]))
        let first = drain(&whole)
        var second = drain(&pieces)
        pieces.append(ByteBuffer(bytes: bytes[split...]))
        let rest = drain(&pieces)
        second.frames += rest.frames
        second.failed = second.failed || rest.failed
        // However the bytes arrive, the same frames come out, or the same failure.
        guard first.failed == second.failed, first.failed || first.frames == second.frames else {
            fatalError("the frame parser's answer depends on how the bytes were cut")  // trap-ok: the fuzzer's finding
        }
    }

    private static func drain(_ parser: inout WebSocketFrameParser) -> (frames: [[UInt8]], failed: Bool) {
        var frames: [[UInt8]] = []
        do {
            while let frame = try parser.next() { frames.append([frame.opcode?.rawValue ?? 0xFF] + Array(frame.payload.readableBytesView)) }
            return (frames, false)
        } catch {
            return (frames, true)
        }
    }

    /// A first request head, as ``HandshakeReader`` reads it.
    static func handshake(_ data: UnsafeRawBufferPointer) {
        let buffer = ByteBuffer(bytes: data)
        guard let length = WebSocketHandshake.headLength(buffer), let head = buffer.getSlice(at: 0, length: length) else { return }
        if case .upgrade(let request) = WebSocketHandshake.read(head) {
            _ = WebSocketAccept.value(forKey: request.key.utf8)
            _ = PerMessageDeflate.accepts(request.extensionOffers)
        }
    }

    /// A `Sec-WebSocket-Extensions` value.
    static func deflateOffer(_ data: UnsafeRawBufferPointer) {
        _ = PerMessageDeflate.accepts([String(decoding: data, as: UTF8.self)])
    }

    /// A compressed message: inflated within a limit, or refused.
    static func inflate(_ data: UnsafeRawBufferPointer) {
        if let inflated = try? PerMessageDeflate.inflate(ByteBuffer(bytes: data), limit: 1 << 16), inflated.readableBytes > 1 << 16 {
            fatalError("inflated past its limit")  // trap-ok: the fuzzer's finding
        }
    }

    /// A poll's query string and the names, positions and presence names in it.
    static func query(_ data: UnsafeRawBufferPointer) {
        let uri = URI("/channels/x/messages?" + String(decoding: data, as: UTF8.self))
        let parameters = uri.queryParameters
        _ = try? PollingTransport.pollQuery(parameters, maxWait: .seconds(25))
        _ = try? ChannelTarget(channel: parameters["channel"].map(String.init), query: parameters, maxInfo: RawJSON.Limits())
        if let since = parameters["since"], let position = StreamPosition(since), StreamPosition(position.description) != position {
            fatalError("a position does not survive being written and read again")  // trap-ok: the fuzzer's finding
        }
    }

    /// A `squall.v1` request frame, and the raw JSON it carries.
    static func request(_ data: UnsafeRawBufferPointer) {
        var ref: RawJSON?
        let frame = ByteBuffer(bytes: data)
        guard let request = try? ProtocolRequest.decode(frame, limits: ProtocolRequest.Limits(), ref: &ref) else { return }
        for value in [request.ref, request.info].compactMap({ $0 }) {
            // Kept values are valid JSON that reads back as itself.
            guard (try? RawJSON(validating: value.bytes, limits: RawJSON.Limits(maxBytes: .max, maxDepth: 64))) == value else {
                fatalError("a kept value is not valid JSON")  // trap-ok: the fuzzer's finding
            }
        }
    }

    /// A connection token as a client sends it: each part decoded from base64url, the header's
    /// `alg` and `kid` and the claims read as verification reads them (the signature check in
    /// between is swift-crypto's).
    static func token(_ data: UnsafeRawBufferPointer) {
        let parts = Array(data).split(separator: UInt8(ascii: "."), maxSplits: 2, omittingEmptySubsequences: false)
        for part in parts {
            guard let decoded = Base64URL.decode(part) else { continue }
            // What decodes is the canonical encoding of what it decodes to.
            let encoded = Data(decoded).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
            guard Array(encoded.utf8) == Array(part) else {
                fatalError("base64url decoded text that is not the encoding of its bytes")  // trap-ok: the fuzzer's finding
            }
        }
        if let header = parts.first.flatMap({ Base64URL.decode($0) }) {
            _ = try? TokenClaims.header(header)
        }
        if parts.count > 1, let claims = Base64URL.decode(parts[1]), let read = try? TokenClaims.decode(claims, maxInfo: RawJSON.Limits()) {
            _ = ClientIdentity(read, leeway: .seconds(5))
        }
    }
}
