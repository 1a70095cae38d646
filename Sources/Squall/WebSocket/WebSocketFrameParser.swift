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

/// Cuts the frames a client sends out of the bytes its connection reads, straight from NIO's
/// receive buffers: a connection keeps no decoder state but a partial frame, when there is one.
///
/// Contracts:
/// - Frames come out whole and in order. What has arrived and not been taken is kept: at most
///   one read's bytes and one partial frame, since the reader takes every frame it can unless
///   it is pausing (then it stops reading from the socket too).
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
            return frame
        } catch {
            failed = true
            partial = nil
            throw error
        }
    }

    /// The next whole frame, or `nil` (nothing consumed) if it has not all arrived yet.
    private func nextFrame(_ buffer: inout ByteBuffer) throws(Failure) -> ClientFrame? {
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
        let payloadStart = maskStart + (masked ? 4 : 0)
        guard buffer.readableBytes >= payloadStart - start + Int(length) else { return nil }
        guard var payload = buffer.getSlice(at: payloadStart, length: Int(length)) else { return nil }
        if masked {
            guard let key = buffer.getInteger(at: maskStart, endianness: .host, as: UInt32.self) else { return nil }
            payload = Self.unmasked(payload, key: key)
        }
        buffer.moveReaderIndex(to: payloadStart + Int(length))
        return ClientFrame(
            fin: first & 0x80 != 0,
            rsv1: first & 0x40 != 0,
            rsv2or3: first & 0x30 != 0,
            opcode: WebSocketFrameBytes.Opcode(rawValue: opcode),
            masked: masked,
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
