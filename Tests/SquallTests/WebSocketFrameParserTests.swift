// SPDX-License-Identifier: Apache-2.0

import NIOCore
import Testing

@testable import Squall

/// The client frame parser on bytes alone: every length encoding, any split of the stream,
/// masks, control frames, and each failure — found from the header, before a payload arrives.
@Suite struct WebSocketFrameParserTests {
    static let limit = 70_000

    /// How a frame's length is written: the shortest form, or a longer one RFC 6455 allows a
    /// reader to meet (§5.2 asks senders for the shortest).
    enum LengthForm: Sendable {
        case shortest, sixteenBit, sixtyFourBit
    }

    /// A client frame's bytes.
    static func frame(
        _ payload: [UInt8],
        opcode: UInt8 = 0x1,
        fin: Bool = true,
        rsv: UInt8 = 0,
        mask: [UInt8]? = [0x37, 0xFA, 0x21, 0x3D],
        length form: LengthForm = .shortest
    ) -> [UInt8] {
        var bytes: [UInt8] = [(fin ? 0x80 : 0) | rsv << 4 | opcode]
        let maskBit: UInt8 = mask == nil ? 0 : 0x80
        let count = payload.count
        switch form {
        case .shortest where count < 126:
            bytes.append(maskBit | UInt8(count))
        case .shortest where count <= 0xFFFF, .sixteenBit:
            bytes.append(maskBit | 126)
            bytes += [UInt8(count >> 8 & 0xFF), UInt8(count & 0xFF)]
        default:
            bytes.append(maskBit | 127)
            bytes += (0..<8).reversed().map { UInt8(UInt64(count) >> (8 * UInt64($0)) & 0xFF) }
        }
        guard let mask else { return bytes + payload }
        return bytes + mask + payload.enumerated().map { $1 ^ mask[$0 % 4] }
    }

    static func text(_ count: Int) -> [UInt8] {
        (0..<count).map { UInt8(ascii: "a") + UInt8($0 % 26) }
    }

    func parse(_ chunks: [[UInt8]], limit: Int = Self.limit) throws -> [ClientFrame] {
        var parser = WebSocketFrameParser(maxFrameSize: limit)
        var frames: [ClientFrame] = []
        for chunk in chunks {
            parser.append(ByteBuffer(bytes: chunk))
            while let frame = try parser.next() { frames.append(frame) }
        }
        return frames
    }

    static let lengths: [(Int, LengthForm)] = [
        (0, .shortest), (1, .shortest), (125, .shortest), (126, .shortest), (127, .shortest), (65_535, .shortest),
        (65_536, .shortest), (5, .sixteenBit), (5, .sixtyFourBit), (300, .sixtyFourBit),
    ]

    @Test(arguments: lengths)
    func aFrameOfAnyLengthComesOutWholeAndUnmasked(_ count: Int, _ form: LengthForm) throws {
        let payload = Self.text(count)
        let frames = try parse([Self.frame(payload, length: form)])
        try #require(frames.count == 1)
        #expect(frames[0].fin && frames[0].masked && !frames[0].rsv1 && !frames[0].rsv2or3)
        #expect(frames[0].opcode == .text)
        #expect(frames[0].payload == ByteBuffer(bytes: payload))
    }

    @Test func aFrameFedByteByByteComesOutOnItsLastByte() throws {
        let bytes = Self.frame(Self.text(200))
        var parser = WebSocketFrameParser(maxFrameSize: Self.limit)
        for byte in bytes.dropLast() {
            parser.append(ByteBuffer(bytes: [byte]))
            let early = try parser.next()
            #expect(early == nil)
        }
        parser.append(ByteBuffer(bytes: [bytes[bytes.count - 1]]))
        let last = try parser.next()
        let after = try parser.next()
        #expect(last?.payload == ByteBuffer(bytes: Self.text(200)))
        #expect(after == nil)
    }

    @Test func framesSplitAnywhereComeOutTheSameAndInOrder() throws {
        let stream = Self.frame(Self.text(3)) + Self.frame(Self.text(130), opcode: 0x2) + Self.frame([1, 2], opcode: 0x9) + Self.frame(Self.text(0))
        for cut in 0...stream.count {
            let frames = try parse([Array(stream[..<cut]), Array(stream[cut...])])
            #expect(frames.map(\.opcode) == [.text, .binary, .ping, .text], "cut at \(cut)")
            #expect(frames.map(\.payload.readableBytes) == [3, 130, 2, 0], "cut at \(cut)")
        }
    }

    static let masks: [[UInt8]?] = [nil, [0, 0, 0, 0], [0xFF, 0xFF, 0xFF, 0xFF], [0x01, 0x02, 0x03, 0x04]]

    @Test(arguments: masks)
    func theMaskIsUndoneOrAnUnmaskedFrameSaysSo(_ mask: [UInt8]?) throws {
        let payload = Self.text(11)
        let frames = try parse([Self.frame(payload, mask: mask)])
        #expect(frames.first?.masked == (mask != nil))
        #expect(frames.first?.payload == ByteBuffer(bytes: payload))
    }

    /// Unmasking goes eight bytes at a time, then byte by byte: every length around a word.
    @Test func theMaskIsUndoneAtEveryLengthAroundAWord() throws {
        for count in 0...25 {
            let payload = (0..<count).map { UInt8(truncatingIfNeeded: $0 * 37 + 11) }
            let frames = try parse([Self.frame(payload, mask: [0x01, 0x80, 0x7F, 0xFE])])
            #expect(frames.first?.payload == ByteBuffer(bytes: payload), "length \(count)")
        }
    }

    @Test func reservedBitsAndUnknownOpcodesArePassedOnForTheReaderToRefuse() throws {
        let frames = try parse([
            Self.frame([1], rsv: 0b100), Self.frame([1], rsv: 0b010), Self.frame([1], rsv: 0b001), Self.frame([1], opcode: 0x3),
            Self.frame([1], opcode: 0xB),
        ])
        #expect(frames.map(\.rsv1) == [true, false, false, false, false])
        #expect(frames.map(\.rsv2or3) == [false, true, true, false, false])
        #expect(frames.map(\.opcode) == [.text, .text, .text, nil, nil])
    }

    @Test func controlFramesBetweenFragmentsComeOutWhereTheyWere() throws {
        let frames = try parse([
            Self.frame(Self.text(2), opcode: 0x1, fin: false), Self.frame(Self.text(125), opcode: 0x9), Self.frame(Self.text(2), opcode: 0x0, fin: false),
            Self.frame([], opcode: 0xA), Self.frame(Self.text(2), opcode: 0x0),
        ])
        #expect(frames.map(\.opcode) == [.text, .ping, .continuation, .pong, .continuation])
        #expect(frames.map(\.fin) == [false, true, false, true, true])
    }

    @Test func aFrameAtTheLimitIsRead() throws {
        let frames = try parse([Self.frame(Self.text(1000), opcode: 0x2)], limit: 1000)
        #expect(frames.first?.payload.readableBytes == 1000)
    }

    /// Headers only: each failure is found before any payload byte arrives.
    static let failures: [(String, [UInt8], WebSocketFrameParser.Failure)] = [
        ("one byte over the limit", Array(frame(text(1001), opcode: 0x2).prefix(4)), .tooBig),
        ("a 64-bit length over the limit", [0x82, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0], .tooBig),
        ("a 64-bit length with its top bit set", [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1], .invalidLength),
        ("a ping without FIN", [0x09, 0x80], .fragmentedControlFrame),
        ("a close without FIN", [0x08, 0x82], .fragmentedControlFrame),
        ("a ping of 126 bytes", [0x89, 0xFE, 0x00, 0x7E], .controlFrameTooLong),
        ("a close of 126 bytes in a 64-bit length", [0x88, 0xFF, 0, 0, 0, 0, 0, 0, 0, 126], .controlFrameTooLong),
    ]

    @Test(arguments: failures)
    func theseHeadersFailTheStream(_ name: String, _ header: [UInt8], _ failure: WebSocketFrameParser.Failure) {
        var parser = WebSocketFrameParser(maxFrameSize: 1000)
        parser.append(ByteBuffer(bytes: header))
        #expect(throws: failure, "\(name)") { try parser.next() }
    }

    @Test func afterAFailureNothingMoreIsRead() throws {
        var parser = WebSocketFrameParser(maxFrameSize: 1000)
        parser.append(ByteBuffer(bytes: [0x09, 0x80] + Self.frame(Self.text(3))))
        #expect(throws: WebSocketFrameParser.Failure.fragmentedControlFrame) { try parser.next() }
        parser.append(ByteBuffer(bytes: Self.frame(Self.text(3))))
        let next = try parser.next()
        #expect(next == nil)
    }

    @Test func anIncompleteHeaderWaitsForMore() throws {
        for header in [[0x81], [0x81, 0xFE, 0x01], [0x81, 0xFF, 0, 0, 0, 0, 0, 0, 1], [0x81, 0x85, 1, 2, 3]] as [[UInt8]] {
            var parser = WebSocketFrameParser(maxFrameSize: Self.limit)
            parser.append(ByteBuffer(bytes: header))
            let next = try parser.next()
            #expect(next == nil, "\(header)")
        }
    }
}
