// SPDX-License-Identifier: Apache-2.0

import NIOCore
import SquallCore

/// One frame a client sent (RFC 6455 §5.2), its payload unmasked.
struct ClientFrame {
    /// The last frame of its message.
    let fin: Bool
    /// RSV1: set on the first frame of a permessage-deflate compressed message.
    let rsv1: Bool
    /// RSV2 or RSV3: no extension Squall speaks uses them.
    let rsv2or3: Bool
    /// `nil` for an opcode RFC 6455 does not define: refused by whoever reads the frame.
    let opcode: WebSocketFrameBytes.Opcode?
    /// Clients must mask every frame (RFC 6455 §5.1).
    let masked: Bool
    /// The application data, unmasked.
    let payload: ByteBuffer
}

/// The part of a frame that has arrived while the rest has not: what lets text be checked as it
/// arrives (``UTF8Validator``).
struct PartialFrame {
    let rsv1: Bool
    let opcode: WebSocketFrameBytes.Opcode?
    /// The payload's bytes that arrived since the frame's last part was taken, unmasked.
    let newBytes: ByteBuffer
}

/// Cuts the frames a client sends out of the bytes its connection reads, straight from NIO's
/// receive buffers: a connection keeps no decoder state but a partial frame, when there is one.
///
/// Contracts:
/// - Frames come out whole and in order. What has arrived and not been taken is kept: at most
///   one read's bytes and one partial frame, since the reader takes every frame it can unless
///   it is pausing (then it stops reading from the socket too).
/// - The frame still arriving can be looked at as it does (``nextPart(if:)``): each payload
///   byte is handed out once, in a part or in the whole frame's remainder the reader is told to
///   skip (``ClientFrame`` carries the whole payload; the reader knows how much it saw).
/// - A frame longer than `maxFrameSize` is refused from its header, before its payload is read
///   into memory. Control frames may carry at most 125 bytes and may not be fragmented (§5.5).
/// - After a failure the parser drops whatever follows: the stream is no longer framed.
struct WebSocketFrameParser {
    /// Why the byte stream cannot be read as frames.
    enum Failure: Error, Equatable {
        /// A frame longer than the limit (1009).
        case tooBig
        /// A 64-bit length with its top bit set (1002).
        case invalidLength
        /// A control frame without FIN (1002).
        case fragmentedControlFrame
        /// A control frame over 125 bytes (1002).
        case controlFrameTooLong

        /// The close the failure is answered with.
        var disconnect: Disconnect {
            switch self {
            case .tooBig: .messageTooBig
            case .invalidLength: .invalidFrameLength
            case .fragmentedControlFrame: .fragmentedControlFrame
            case .controlFrameTooLong: .controlFrameTooLong
            }
        }
    }

    let maxFrameSize: Int
    private var partial: ByteBuffer?
    private var failed = false
    /// How many payload bytes of the frame still arriving were handed out as parts.
    private(set) var partsTaken = 0

    init(maxFrameSize: Int) {
        self.maxFrameSize = maxFrameSize
    }

    /// Adds what the socket read to what waits to be parsed.
    mutating func append(_ bytes: ByteBuffer) {
        guard !failed else { return }
        if var earlier = partial {
            earlier.writeImmutableBuffer(bytes)
            partial = earlier
        } else {
            partial = bytes
        }
    }

    /// The next whole frame of what has arrived, or `nil` until more arrives.
    mutating func next() throws(Failure) -> ClientFrame? {
        guard !failed, var buffer = partial else { return nil }
        do {
            let frame = try nextFrame(&buffer)
            partial = buffer.readableBytes > 0 ? buffer : nil
            if frame != nil { partsTaken = 0 }
            return frame
        } catch {
            failed = true
            partial = nil
            throw error
        }
    }

    /// The bytes of the frame still arriving that arrived since its last part was taken, if its
    /// header is in and `wanted` says its bytes are worth unmasking; `nil` otherwise.
    mutating func nextPart(if wanted: (WebSocketFrameBytes.Opcode?, _ rsv1: Bool) -> Bool) -> PartialFrame? {
        guard !failed, let buffer = partial, let header = try? Self.header(buffer, maxFrameSize: maxFrameSize) else { return nil }
        let arrived = buffer.readableBytes - (header.payloadStart - buffer.readerIndex)
        guard arrived < header.length, arrived > partsTaken, wanted(header.opcode, header.rsv1),
            var bytes = buffer.getSlice(at: header.payloadStart + partsTaken, length: arrived - partsTaken)
        else { return nil }
        if let key = header.maskKey {
            // The mask goes on where the last part left it: its bytes in memory order, turned
            // by that offset (a rotation of the key read as little-endian).
            let inOrder = UInt32(littleEndian: key)
            let shift = UInt32(partsTaken & 3) * 8
            bytes = Self.unmasked(bytes, key: ((inOrder &>> shift) | (inOrder &<< (32 &- shift))).littleEndian)
        }
        partsTaken = arrived
        return PartialFrame(rsv1: header.rsv1, opcode: header.opcode, newBytes: bytes)
    }

    /// A frame's header, once it has all arrived.
    private struct Header {
        let fin: Bool
        let rsv1: Bool
        let rsv2or3: Bool
        let opcode: WebSocketFrameBytes.Opcode?
        let maskKey: UInt32?
        let payloadStart: Int
        let length: Int
    }

    /// The header of the frame at `buffer`'s reader index, or `nil` if it has not all arrived.
    private static func header(_ buffer: ByteBuffer, maxFrameSize: Int) throws(Failure) -> Header? {
        let start = buffer.readerIndex
        guard let first = buffer.getInteger(at: start, as: UInt8.self),
            let second = buffer.getInteger(at: start + 1, as: UInt8.self)
        else { return nil }
        let opcode = first & 0x0F
        let isControl = opcode & 0x08 != 0
        var headerLength = 2
        var length = UInt64(second & 0x7F)
        switch length {
        case 126:
            guard let extended = buffer.getInteger(at: start + 2, as: UInt16.self) else { return nil }
            length = UInt64(extended)
            headerLength = 4
        case 127:
            guard let extended = buffer.getInteger(at: start + 2, as: UInt64.self) else { return nil }
            guard extended >> 63 == 0 else { throw .invalidLength }
            length = extended
            headerLength = 10
        default:
            break
        }
        if isControl {
            guard first & 0x80 != 0 else { throw .fragmentedControlFrame }
            guard length <= 125 else { throw .controlFrameTooLong }
        }
        guard length <= UInt64(maxFrameSize) else { throw .tooBig }
        let masked = second & 0x80 != 0
        let maskStart = start + headerLength
        let maskKey = masked ? buffer.getInteger(at: maskStart, endianness: .host, as: UInt32.self) : nil
        guard !masked || maskKey != nil else { return nil }
        return Header(
            fin: first & 0x80 != 0,
            rsv1: first & 0x40 != 0,
            rsv2or3: first & 0x30 != 0,
            opcode: WebSocketFrameBytes.Opcode(rawValue: opcode),
            maskKey: maskKey,
            payloadStart: maskStart + (masked ? 4 : 0),
            length: Int(length)
        )
    }

    /// The next whole frame, or `nil` (nothing consumed) if it has not all arrived yet.
    private func nextFrame(_ buffer: inout ByteBuffer) throws(Failure) -> ClientFrame? {
        guard let header = try Self.header(buffer, maxFrameSize: maxFrameSize) else { return nil }
        guard buffer.readableBytes >= header.payloadStart - buffer.readerIndex + header.length,
            var payload = buffer.getSlice(at: header.payloadStart, length: header.length)
        else { return nil }
        if let key = header.maskKey { payload = Self.unmasked(payload, key: key) }
        buffer.moveReaderIndex(to: header.payloadStart + header.length)
        return ClientFrame(
            fin: header.fin,
            rsv1: header.rsv1,
            rsv2or3: header.rsv2or3,
            opcode: header.opcode,
            masked: header.maskKey != nil,
            payload: payload
        )
    }

    /// `payload` XORed with the 4-byte mask `key`, in a buffer of its own (the received bytes
    /// are NIO's, reused for the next read). `key` holds the mask's bytes in the order they
    /// arrived (read in host byte order), so XOR with a word loaded from the payload applies
    /// them in order: eight bytes a step, then the rest one by one. Unmasking is the parser's
    /// only per-byte work, and per byte it was most of the parser's time.
    private static func unmasked(_ payload: ByteBuffer, key: UInt32) -> ByteBuffer {
        let count = payload.readableBytes
        var result = ByteBufferAllocator().buffer(capacity: count)
        guard count > 0 else { return result }
        let wideKey = UInt64(key) | UInt64(key) << 32
        result.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { destination in
            payload.withUnsafeReadableBytes { source in
                var index = 0
                while count - index >= 8 {
                    let word = source.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                    destination.storeBytes(of: word ^ wideKey, toByteOffset: index, as: UInt64.self)
                    index += 8
                }
                withUnsafeBytes(of: key) { keyBytes in
                    while index < count {
                        destination[index] = source[index] ^ keyBytes[index & 3]
                        index += 1
                    }
                }
            }
            return count
        }
        return result
    }
}
