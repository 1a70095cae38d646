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
    public static func writeString(_ text: String, into out: inout ByteBuffer) {
        out.writeStaticString("\"")
        var text = text
        text.withUTF8 { bytes in
            var clean = 0  // start of the run not yet written
            for (index, byte) in bytes.enumerated() where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                out.writeBytes(UnsafeBufferPointer(rebasing: bytes[clean..<index]))
                switch byte {
                case UInt8(ascii: "\""): out.writeStaticString(#"\""#)
                case UInt8(ascii: "\\"): out.writeStaticString(#"\\"#)
                case 0x08: out.writeStaticString(#"\b"#)
                case 0x0C: out.writeStaticString(#"\f"#)
                case 0x0A: out.writeStaticString(#"\n"#)
                case 0x0D: out.writeStaticString(#"\r"#)
                case 0x09: out.writeStaticString(#"\t"#)
                default:
                    out.writeStaticString(#"\u00"#)
                    out.writeInteger(hexDigits[Int(byte >> 4)])
                    out.writeInteger(hexDigits[Int(byte & 0x0F)])
                }
                clean = index + 1
            }
            out.writeBytes(UnsafeBufferPointer(rebasing: bytes[clean...]))
        }
        out.writeStaticString("\"")
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
