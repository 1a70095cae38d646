// SPDX-License-Identifier: Apache-2.0

import NIOCore
import SquallCore
import Testing

@Suite("JSONScanner: strict JSON in one linear pass, with a nesting limit")
struct JSONScannerTests {
    func kind(_ text: String, maxDepth: Int = 8) throws -> JSONScanner.Kind {
        var text = text
        return try text.withUTF8 { bytes in try JSONScanner.validate(UnsafeRawBufferPointer(bytes), maxDepth: maxDepth) }
    }

    @Test("every kind of value is read; whitespace around it is allowed")
    func valid() throws {
        #expect(try kind(#" {"a": [1, -2.5e+3, true, false, null, "x\n\u00e9\ud83d\ude00"]} "#) == .object)
        #expect(try kind("[]") == .array)
        #expect(try kind("0") == .number)
        #expect(try kind(#""""#) == .string)
        #expect(try kind("null") == .null)
    }

    @Test(
        "what RFC 8259 does not allow is refused",
        arguments: [
            "", "{", "[1,]", "{\"a\"}", "01", "1.", "-", "1e", "tru", "\"\u{01}\"", "\"\\x\"", "\"\\u12\"", "[1] 2", "{'a':1}", "NaN",
        ])
    func invalid(_ text: String) {
        #expect(throws: JSONScanner.Failure.self) { try kind(text) }
    }

    @Test("invalid UTF-8 inside a string is refused")
    func invalidUTF8() {
        for bytes: [UInt8] in [[0x22, 0xC3, 0x28, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xF8, 0x22], [0x22, 0xE2, 0x82, 0x22]] {
            #expect(throws: JSONScanner.Failure.self) {
                try bytes.withUnsafeBytes { raw in _ = try JSONScanner.validate(raw, maxDepth: 4) }
            }
        }
    }

    @Test("nesting past the limit is refused as too deep, however deep it goes")
    func depth() throws {
        #expect(try kind("[[[[]]]]", maxDepth: 4) == .array)
        #expect(throws: JSONScanner.Failure.tooDeep) { try kind("[[[[[]]]]]", maxDepth: 4) }
        #expect(throws: JSONScanner.Failure.tooDeep) { try kind(String(repeating: "[", count: 100_000), maxDepth: 16) }
        #expect(throws: JSONScanner.Failure.tooDeep) {
            try kind(String(repeating: #"{"a":"#, count: 600) + "1" + String(repeating: "}", count: 600), maxDepth: 16)
        }
    }

    @Test("an object's members come out in order with their values' exact bytes")
    func members() throws {
        var text = #"{"op":"ping", "ref" : 9007199254740993,"na\u006de":{"b":[1]}}"#
        let members = try text.withUTF8 { bytes in try JSONScanner.members(UnsafeRawBufferPointer(bytes), maxDepth: 4) }
        let utf8 = Array(text.utf8)
        #expect(members?.map(\.name) == ["op", "ref", "name"])
        #expect(members.map { $0.map { String(decoding: utf8[$0.value], as: UTF8.self) } } == [#""ping""#, "9007199254740993", #"{"b":[1]}"#])
        #expect(members?.map(\.kind) == [.string, .number, .object])
    }

    @Test("an array's elements come out in order with their exact bytes; other values give none")
    func elements() throws {
        func elements(_ text: String, maxDepth: Int = 4) throws -> [String]? {
            var text = text
            let utf8 = Array(text.utf8)
            let found = try text.withUTF8 { bytes in try JSONScanner.elements(UnsafeRawBufferPointer(bytes), maxDepth: maxDepth) }
            return found?.map { String(decoding: utf8[$0.value], as: UTF8.self) }
        }
        #expect(try elements(#" ["chat:*", 1 ,{"a":[2]}, null] "#) == [#""chat:*""#, "1", #"{"a":[2]}"#, "null"])
        #expect(try elements("[]") == [])
        #expect(try elements(#"{"a":1}"#) == nil)
        #expect(try elements(#""x""#) == nil)
        #expect(throws: JSONScanner.Failure.self) { try elements("[1,]") }
        #expect(throws: JSONScanner.Failure.self) { try elements("[1] [2]") }
        #expect(throws: JSONScanner.Failure.tooDeep) { try elements("[[1]]", maxDepth: 1) }
    }

    @Test("escapes are undone, surrogate pairs joined and lone surrogates replaced")
    func unescape() throws {
        func text(_ literal: String) throws -> String {
            var literal = literal
            return try literal.withUTF8 { bytes in try JSONScanner.unescape(UnsafeRawBufferPointer(bytes)) }
        }
        #expect(try text(#""a\"b\\c\/d\n\t\u00e9\ud83d\ude00""#) == "a\"b\\c/d\n\té😀")
        #expect(try text(#""\ud83d x""#) == "\u{FFFD} x")
        #expect(try text(#""plain""#) == "plain")
    }

    @Test("RawJSON keeps a value within its limits as written, and refuses others")
    func raw() throws {
        let limits = RawJSON.Limits(maxBytes: 32, maxDepth: 2)
        let kept = try RawJSON(validating: ByteBuffer(string: #"{"a": [1.50]}"#), limits: limits)
        #expect(kept.description == #"{"a": [1.50]}"#)
        #expect(throws: RawJSON.Failure.tooDeep(limit: 2)) { try RawJSON(validating: ByteBuffer(string: "[[[1]]]"), limits: limits) }
        #expect(throws: RawJSON.Failure.tooLarge(limit: 32)) {
            try RawJSON(validating: ByteBuffer(string: "\"" + String(repeating: "x", count: 40) + "\""), limits: limits)
        }
        #expect(throws: RawJSON.Failure.invalid) { try RawJSON(validating: ByteBuffer(string: "{a}"), limits: limits) }
        #expect(RawJSON.name("a\"b").description == #"{"name":"a\"b"}"#)
    }

    @Test("a clamped duration never traps, whatever the number")
    func clampedDuration() {
        let limit = Duration.seconds(25)
        #expect(Duration(seconds: 1e16, atMost: limit) == limit)
        #expect(Duration(seconds: 1e300, atMost: limit) == limit)
        #expect(Duration(seconds: .infinity, atMost: limit) == .zero)
        #expect(Duration(seconds: -3, atMost: limit) == .zero)
        #expect(Duration(seconds: 1.2345, atMost: limit) == .milliseconds(1235))
        #expect(Duration(seconds: 1e300, atMost: .seconds(Int64.max)) == .seconds(Int64.max))
    }
}
