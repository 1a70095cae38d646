// SPDX-License-Identifier: Apache-2.0

import NIOCore

/// JSON as Squall writes it, by hand: compact, keys in the order written (callers write them
/// sorted, so output is stable), `/` unescaped, control characters as short escapes or `\u00xx`.
///
/// Why by hand: every reply is a flat object of strings, numbers and already-validated raw JSON,
/// so there is nothing an encoder could add but cost — and, with a nested value, a way to fail.
/// Writing cannot fail and takes time linear in what is written.
public enum JSONText {
    /// `text` as a JSON string (RFC 8259 §7): `"` and `\` escaped, control characters as the
    /// short escapes or `\u00XX`, everything else — `/` and all of Unicode — as it is.
    ///
    /// Two passes over the bytes: one to measure, one to write, so that the buffer grows once, to
    /// what the text needs (a text of control characters grows six-fold), and never again.
    public static func writeString(_ text: String, into out: inout ByteBuffer) {
        var text = text
        text.withUTF8 { bytes in
            var length = 2
            for byte in bytes { length += Int(escapedLength[Int(byte)]) }
            out.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { raw in
                var index = 0
                func put(_ byte: UInt8) {
                    raw[index] = byte
                    index += 1
                }
                put(UInt8(ascii: "\""))
                for byte in bytes {
                    guard escapedLength[Int(byte)] > 1 else {
                        put(byte)
                        continue
                    }
                    put(UInt8(ascii: "\\"))
                    switch byte {
                    case UInt8(ascii: "\""): put(UInt8(ascii: "\""))
                    case UInt8(ascii: "\\"): put(UInt8(ascii: "\\"))
                    case 0x08: put(UInt8(ascii: "b"))
                    case 0x0C: put(UInt8(ascii: "f"))
                    case 0x0A: put(UInt8(ascii: "n"))
                    case 0x0D: put(UInt8(ascii: "r"))
                    case 0x09: put(UInt8(ascii: "t"))
                    default:
                        put(UInt8(ascii: "u"))
                        put(UInt8(ascii: "0"))
                        put(UInt8(ascii: "0"))
                        put(hexDigits[Int(byte >> 4)])
                        put(hexDigits[Int(byte & 0x0F)])
                    }
                }
                put(UInt8(ascii: "\""))
                return index
            }
        }
    }

    /// How many bytes each byte takes inside a JSON string.
    private static let escapedLength: [UInt8] = (0..<256).map { byte in
        switch byte {
        case 0x08, 0x09, 0x0A, 0x0C, 0x0D, 0x22, 0x5C: 2
        case ..<0x20: 6
        default: 1
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// A JSON object written member by member. Names are static (never escaped); absent
    /// optionals are left out, as `JSONEncoder` leaves them.
    public struct Object {
        /// The bytes so far; ``finish()`` closes the object.
        public private(set) var buffer: ByteBuffer
        private var empty = true

        /// An object whose bytes start in a buffer of `capacity`.
        public init(capacity: Int = 128) {
            buffer = ByteBufferAllocator().buffer(capacity: capacity)
            buffer.writeStaticString("{")
        }

        private mutating func name(_ name: StaticString) {
            if !empty { buffer.writeStaticString(",") }
            empty = false
            buffer.writeStaticString("\"")
            buffer.writeStaticString(name)
            buffer.writeStaticString("\":")
        }

        /// `"name":"value"`, unless `value` is `nil`.
        public mutating func string(_ name: StaticString, _ value: String?) {
            guard let value else { return }
            self.name(name)
            JSONText.writeString(value, into: &buffer)
        }

        /// `"name":value` for an integer.
        public mutating func integer(_ name: StaticString, _ value: (some BinaryInteger)?) {
            guard let value else { return }
            self.name(name)
            buffer.writeString(String(value))
        }

        /// `"name":true|false`, unless `value` is `nil`.
        public mutating func bool(_ name: StaticString, _ value: Bool?) {
            guard let value else { return }
            self.name(name)
            if value { buffer.writeStaticString("true") } else { buffer.writeStaticString("false") }
        }

        /// `"name":` followed by JSON text written as it is, unless `value` is `nil`.
        public mutating func raw(_ name: StaticString, _ value: RawJSON?) {
            guard let value else { return }
            self.raw(name, json: value.bytes)
        }

        /// `"name":` followed by `json`, which must be valid JSON text.
        public mutating func raw(_ name: StaticString, json: ByteBuffer) {
            self.name(name)
            buffer.writeImmutableBuffer(json)
        }

        /// `"name":[…]` with each element's JSON text written as it is.
        public mutating func array(_ name: StaticString, _ elements: [ByteBuffer]) {
            self.name(name)
            buffer.writeStaticString("[")
            for (index, element) in elements.enumerated() {
                if index > 0 { buffer.writeStaticString(",") }
                buffer.writeImmutableBuffer(element)
            }
            buffer.writeStaticString("]")
        }

        /// The finished object.
        public consuming func finish() -> ByteBuffer {
            buffer.writeStaticString("}")
            return buffer
        }
    }
}
