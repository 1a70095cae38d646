// SPDX-License-Identifier: Apache-2.0

import NIOCore

/// Checks UTF-8 as it arrives, in pieces: a text message's fragments, and the parts of a frame
/// still arriving, so that invalid text is refused (1007) at the byte where it becomes invalid,
/// not at the end of its message (RFC 6455 §8.1; Autobahn 6.4.x "fail fast").
///
/// Contract: after feeding the bytes of a text, ``isValid`` holds as long as they are a valid
/// beginning of UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF), and
/// ``isComplete`` when they end on a whole character. A character split across pieces is just
/// carried over. ASCII is checked eight bytes at a time.
struct UTF8Validator {
    /// Continuation bytes the character under way still needs.
    private var needed = 0
    /// The range the next continuation byte must be in (narrower after E0, ED, F0, F4).
    private var lower: UInt8 = 0x80
    private var upper: UInt8 = 0xBF
    private(set) var isValid = true

    /// The bytes so far end on a whole character.
    var isComplete: Bool { isValid && needed == 0 }

    /// Takes the next piece; returns ``isValid``.
    @discardableResult
    mutating func feed(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard isValid else { return false }
        let count = bytes.count
        var index = 0
        while index < count {
            if needed == 0 {
                while count - index >= 8, bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
                    index += 8
                }
                guard index < count else { break }
                let byte = bytes[index]
                index += 1
                switch byte {
                case 0x00...0x7F: continue
                case 0xC2...0xDF: expect(1, 0x80, 0xBF)
                case 0xE0: expect(2, 0xA0, 0xBF)
                case 0xE1...0xEC, 0xEE...0xEF: expect(2, 0x80, 0xBF)
                case 0xED: expect(2, 0x80, 0x9F)
                case 0xF0: expect(3, 0x90, 0xBF)
                case 0xF1...0xF3: expect(3, 0x80, 0xBF)
                case 0xF4: expect(3, 0x80, 0x8F)
                default:
                    isValid = false
                    return false
                }
            } else {
                let byte = bytes[index]
                index += 1
                guard byte >= lower, byte <= upper else {
                    isValid = false
                    return false
                }
                expect(needed - 1, 0x80, 0xBF)
            }
        }
        return true
    }

    /// ``feed(_:)-(UnsafeRawBufferPointer)`` for a buffer's readable bytes.
    @discardableResult
    mutating func feed(_ buffer: ByteBuffer) -> Bool {
        var validator = self
        let valid = buffer.withUnsafeReadableBytes { validator.feed($0) }
        self = validator
        return valid
    }

    private mutating func expect(_ count: Int, _ lower: UInt8, _ upper: UInt8) {
        needed = count
        self.lower = lower
        self.upper = upper
    }
}
