// SPDX-License-Identifier: Apache-2.0

import NIOCore
import Testing

@testable import Squall

/// ``UTF8Validator`` agrees with the standard library's UTF-8 validation on every text, however
/// it is cut into pieces.
@Suite struct UTF8ValidatorTests {
    /// Feeds `bytes` cut at `cut`; (valid so far, complete).
    static func check(_ bytes: [UInt8], cut: Int) -> (Bool, Bool) {
        var validator = UTF8Validator()
        let head = ByteBuffer(bytes: bytes[..<cut])
        let tail = ByteBuffer(bytes: bytes[cut...])
        _ = validator.feed(head)
        let valid = validator.feed(tail)
        return (valid, validator.isComplete)
    }

    static func isUTF8(_ bytes: [UInt8]) -> Bool { String(validating: bytes, as: UTF8.self) != nil }

    @Test func everyOneAndTwoByteSequenceAgreesWithTheStandardLibrary() {
        var disagreements: [[UInt8]] = []
        for first in 0...255 {
            let one = [UInt8(first)]
            if Self.check(one, cut: 0).1 != Self.isUTF8(one) { disagreements.append(one) }
            for second in 0...255 {
                let two = [UInt8(first), UInt8(second)]
                for cut in 0...2 where Self.check(two, cut: cut).1 != Self.isUTF8(two) { disagreements.append(two) }
            }
        }
        #expect(disagreements.isEmpty)
    }

    @Test func everyLeadAndFirstContinuationOfLongerCharactersAgrees() {
        // Three and four-byte forms: every lead byte with every second byte, the rest fixed.
        var disagreements: [[UInt8]] = []
        for lead in 0xE0...0xF7 {
            for second in 0...255 {
                for tail in [[0x80], [0xBF], [0x80, 0x80], [0xBF, 0xBF], [0x41], [0x80, 0x41]] as [[UInt8]] {
                    let bytes = [UInt8(lead), UInt8(second)] + tail
                    for cut in 0...bytes.count where Self.check(bytes, cut: cut).1 != Self.isUTF8(bytes) { disagreements.append(bytes) }
                }
            }
        }
        #expect(disagreements.isEmpty)
    }

    @Test func invalidTextIsNoticedAtTheByteItTurnsInvalid() {
        var validator = UTF8Validator()
        let start = validator.feed(ByteBuffer(bytes: Array("κόσμε".utf8) + [0xF4]))
        #expect(start && !validator.isComplete)
        let past = validator.feed(ByteBuffer(bytes: [0x90]))
        #expect(!past, "past U+10FFFF")
        let after = validator.feed(ByteBuffer(bytes: [0x41]))
        #expect(!after, "invalid stays invalid")
    }

    @Test func longASCIIAndMixedTextAgree() {
        let text = Array((String(repeating: "plain ascii ", count: 40) + "ÄÖÜ 😀 €" + String(repeating: "x", count: 17)).utf8)
        for cut in stride(from: 0, through: text.count, by: 7) { #expect(Self.check(text, cut: cut) == (true, true)) }
        var broken = text
        broken[500] = 0xFF
        #expect(Self.check(broken, cut: 100).0 == false)
    }
}
