// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore
import SquallCore

/// A request a `/ws` client sends: one JSON object per text frame. Which fields matter
/// depends on `op`; docs/protocol.md lists them.
///
/// Decoded by hand over ``JSONScanner``, in one linear pass with a nesting limit: `ref` and
/// `info` are kept as the client wrote them (``RawJSON``), so that the reply echoes `ref` byte
/// for byte and presence stores `info` at its own size.
struct ProtocolRequest {
    /// How big `ref` and `info` may be, and how deep a request may nest.
    struct Limits: Sendable {
        /// `ref`: an id to match replies, not a payload. Default 256 bytes, 4 deep.
        var ref = RawJSON.Limits(maxBytes: 256, maxDepth: 4)
        /// Presence `info`. Default 4 KiB, 8 deep.
        var info = RawJSON.Limits()

        /// Deepest nesting anywhere in a request: the object itself, `since`, and the deepest
        /// `ref` or `info` allowed.
        var maxDepth: Int { 2 + max(ref.maxDepth, info.maxDepth) }
    }

    var op: String?
    var ref: RawJSON?
    var channel: String?
    var since: StreamPosition?
    var data: String?
    var encoding: String?
    var presence: Bool?
    var info: RawJSON?
    var limit: Int?
    var after: String?
    var idempotencyKey: String?
    /// A connection token (`connect`, `refresh`) or a subscription token (`subscribe`).
    var token: String?

    /// Decodes one request frame.
    /// - Throws: `invalid_json` when the frame is not JSON, `invalid_request` when it is not an
    ///   object, nests too deep, or a field has the wrong type or size. `ref` is set as soon as
    ///   it is read, so that an error about a later field can still echo it.
    static func decode(_ frame: ByteBuffer, limits: Limits, ref: inout RawJSON?) throws(ProtocolError) -> ProtocolRequest {
        let scanned: Result<[JSONScanner.Member]?, JSONScanner.Failure> = frame.withUnsafeReadableBytes { raw in
            Result { () throws(JSONScanner.Failure) in try JSONScanner.members(raw, maxDepth: limits.maxDepth) }
        }
        let members: [JSONScanner.Member]
        switch scanned {
        case .success(let object?): members = object
        case .success(nil): throw ProtocolError(.invalidRequest, message: "a request is a JSON object")
        case .failure(.tooDeep): throw ProtocolError(.invalidRequest, message: "the request nests deeper than \(limits.maxDepth) levels")
        case .failure(.syntax): throw ProtocolError(.invalidJSON, message: "the frame is not a JSON object")
        }
        var request = ProtocolRequest()
        // `ref` first, wherever it stands, so that every later error can carry it.
        if let member = members.last(where: { $0.name == "ref" }), member.kind != .null {
            request.ref = try raw(member, in: frame, limits: limits.ref)
            ref = request.ref
        }
        for member in members where member.kind != .null {
            switch member.name {
            case "op": request.op = try string(member, in: frame)
            case "channel": request.channel = try string(member, in: frame)
            case "data": request.data = try string(member, in: frame)
            case "encoding": request.encoding = try string(member, in: frame)
            case "after": request.after = try string(member, in: frame)
            case "idempotency_key": request.idempotencyKey = try string(member, in: frame)
            case "token": request.token = try string(member, in: frame)
            case "presence":
                guard member.kind == .bool else { throw wrongType(member.name) }
                request.presence = frame.getInteger(at: frame.readerIndex + member.value.lowerBound, as: UInt8.self) == UInt8(ascii: "t")
            case "limit":
                guard let limit = integer(member, in: frame).flatMap(Int.init(exactly:)) else { throw wrongType(member.name) }
                request.limit = limit
            case "info":
                request.info = try raw(member, in: frame, limits: limits.info)
            case "since":
                request.since = try position(member, in: frame)
            default:
                continue  // `ref`, read above; unknown fields are ignored
            }
        }
        return request
    }

    private static func wrongType(_ path: String) -> ProtocolError {
        ProtocolError(.invalidRequest, message: "\"\(path)\" has the wrong type")
    }

    private static func slice(_ member: JSONScanner.Member, in frame: ByteBuffer) -> ByteBuffer {
        frame.getSlice(at: frame.readerIndex + member.value.lowerBound, length: member.value.count) ?? ByteBuffer()
    }

    private static func string(_ member: JSONScanner.Member, in frame: ByteBuffer, path: String? = nil) throws(ProtocolError) -> String {
        guard member.kind == .string else { throw wrongType(path ?? member.name) }
        let literal = slice(member, in: frame)
        let text: String? = literal.withUnsafeReadableBytes { raw in try? JSONScanner.unescape(raw) }
        guard let text else { throw wrongType(path ?? member.name) }
        return text
    }

    /// A JSON number that is a whole number, as written: digits with an optional minus sign.
    private static func integer(_ member: JSONScanner.Member, in frame: ByteBuffer) -> Int64? {
        guard member.kind == .number else { return nil }
        return Int64(String(buffer: slice(member, in: frame)))
    }

    private static func raw(_ member: JSONScanner.Member, in frame: ByteBuffer, limits: RawJSON.Limits) throws(ProtocolError) -> RawJSON {
        do {
            return try RawJSON(validating: slice(member, in: frame), limits: limits)
        } catch {
            switch error {
            case .tooLarge(let limit):
                throw ProtocolError(.invalidRequest, message: "\"\(member.name)\" is longer than \(limit) bytes")
            case .tooDeep(let limit):
                throw ProtocolError(.invalidRequest, message: "\"\(member.name)\" nests deeper than \(limit) levels")
            case .invalid:
                throw wrongType(member.name)
            }
        }
    }

    private static func position(_ member: JSONScanner.Member, in frame: ByteBuffer) throws(ProtocolError) -> StreamPosition {
        guard member.kind == .object else { throw wrongType("since") }
        let object = slice(member, in: frame)
        let fields: [JSONScanner.Member]? = object.withUnsafeReadableBytes { raw in try? JSONScanner.members(raw, maxDepth: 1) }
        guard let fields else { throw wrongType("since") }
        var epoch: String?
        var offset: UInt64?
        for field in fields {
            switch field.name {
            case "epoch": epoch = try string(field, in: object, path: "since.epoch")
            case "offset":
                // The whole range of offsets, as `since=EPOCH:OFFSET` over HTTP takes it.
                guard field.kind == .number, let value = UInt64(String(buffer: slice(field, in: object))) else { throw wrongType("since.offset") }
                offset = value
            default: continue
            }
        }
        guard let epoch else { throw ProtocolError(.invalidRequest, message: "\"since.epoch\" is missing") }
        guard let offset else { throw ProtocolError(.invalidRequest, message: "\"since.offset\" is missing") }
        return StreamPosition(epoch: epoch, offset: offset)
    }
}
