// SPDX-License-Identifier: Apache-2.0

/// A strict JSON (RFC 8259) reader for what clients send: it validates a whole text in one pass,
/// in time linear in its size, with a nesting limit checked as it goes, and hands out the
/// top-level object's members as byte ranges of the text — so that values Squall only stores and
/// echoes (`ref`, presence `info`) are kept as the client wrote them, never rebuilt.
///
/// Contracts:
/// - **Linear.** Every byte is looked at a bounded number of times; no value is materialized
///   while scanning, so a deep or wide text costs what its length costs.
/// - **Bounded depth.** Arrays and objects nest at most `maxDepth` levels (the top level counts
///   as one); deeper input is refused with ``Failure/tooDeep`` as soon as the limit is passed.
/// - **Strict.** One value, surrounded by optional whitespace; strings must be valid UTF-8 with
///   valid escapes; numbers follow the RFC's grammar. Anything else is ``Failure/syntax``.
/// - Never traps, on any input.
public struct JSONScanner {
    /// Why a text was refused.
    public enum Failure: Error, Hashable, Sendable {
        /// Not JSON, at this byte offset.
        case syntax(at: Int)
        /// Nested deeper than the limit.
        case tooDeep
    }

    /// What a value is, from its first byte.
    public enum Kind: Sendable, Hashable {
        case object, array, string, number, bool, null
    }

    /// One member of the top-level object: its name (unescaped) and its value's bytes.
    public struct Member: Sendable {
        /// The member's name.
        public let name: String
        /// Where its value lies in the text.
        public let value: Range<Int>
        /// What its value is.
        public let kind: Kind
    }

    private let bytes: UnsafeRawBufferPointer
    private let maxDepth: Int
    private var index = 0

    private init(_ bytes: UnsafeRawBufferPointer, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    /// Validates `bytes` as one JSON value nested at most `maxDepth` deep.
    /// - Returns: what the value is.
    public static func validate(_ bytes: UnsafeRawBufferPointer, maxDepth: Int) throws(Failure) -> Kind {
        var scanner = JSONScanner(bytes, maxDepth: maxDepth)
        scanner.skipWhitespace()
        let kind = try scanner.value(depth: 0)
        scanner.skipWhitespace()
        guard scanner.index == bytes.count else { throw .syntax(at: scanner.index) }
        return kind
    }

    /// Validates `bytes` as JSON and, when it is an object, lists its members in order.
    /// - Returns: `nil` when the text is valid JSON but not an object.
    public static func members(_ bytes: UnsafeRawBufferPointer, maxDepth: Int) throws(Failure) -> [Member]? {
        try container(bytes, maxDepth: maxDepth, open: UInt8(ascii: "{"), close: UInt8(ascii: "}")) { scanner throws(Failure) in
            let nameStart = scanner.index
            try scanner.string()
            let name = try Self.unescape(UnsafeRawBufferPointer(rebasing: bytes[nameStart..<scanner.index]))
            scanner.skipWhitespace()
            try scanner.expect(UInt8(ascii: ":"))
            scanner.skipWhitespace()
            let valueStart = scanner.index
            let kind = try scanner.value(depth: 1)
            return Member(name: name, value: valueStart..<scanner.index, kind: kind)
        }
    }

    /// One element of a top-level array: its value's bytes and what it is.
    public struct Element: Sendable {
        /// Where the value lies in the text.
        public let value: Range<Int>
        /// What the value is.
        public let kind: Kind
    }

    /// Validates `bytes` as JSON and, when it is an array, lists its elements in order.
    /// - Returns: `nil` when the text is valid JSON but not an array.
    public static func elements(_ bytes: UnsafeRawBufferPointer, maxDepth: Int) throws(Failure) -> [Element]? {
        try container(bytes, maxDepth: maxDepth, open: UInt8(ascii: "["), close: UInt8(ascii: "]")) { scanner throws(Failure) in
            let start = scanner.index
            let kind = try scanner.value(depth: 1)
            return Element(value: start..<scanner.index, kind: kind)
        }
    }

    /// The items of a top-level object or array (`open` … `close`), each read by `item` from its
    /// first byte; `nil` when the text is valid JSON of another kind.
    @inline(__always)
    private static func container<Item>(
        _ bytes: UnsafeRawBufferPointer, maxDepth: Int, open: UInt8, close: UInt8, item: (inout JSONScanner) throws(Failure) -> Item
    ) throws(Failure) -> [Item]? {
        var scanner = JSONScanner(bytes, maxDepth: maxDepth)
        scanner.skipWhitespace()
        guard scanner.peek == open else {
            _ = try validate(bytes, maxDepth: maxDepth)
            return nil
        }
        guard maxDepth >= 1 else { throw .tooDeep }
        scanner.index += 1
        var items: [Item] = []
        scanner.skipWhitespace()
        if scanner.peek == close {
            scanner.index += 1
        } else {
            while true {
                scanner.skipWhitespace()
                items.append(try item(&scanner))
                scanner.skipWhitespace()
                if scanner.peek == UInt8(ascii: ",") {
                    scanner.index += 1
                    continue
                }
                try scanner.expect(close)
                break
            }
        }
        scanner.skipWhitespace()
        guard scanner.index == bytes.count else { throw .syntax(at: scanner.index) }
        return items
    }

    /// The text of a JSON string literal (quotes included), unescaped. The literal must already
    /// have been validated by the scanner.
    public static func unescape(_ literal: UnsafeRawBufferPointer) throws(Failure) -> String {
        guard literal.count >= 2 else { throw .syntax(at: 0) }
        let body = UnsafeRawBufferPointer(rebasing: literal[1..<(literal.count - 1)])
        guard body.contains(UInt8(ascii: "\\")) else {
            return String(decoding: body, as: UTF8.self)
        }
        var utf8: [UInt8] = []
        utf8.reserveCapacity(body.count)
        var position = 0
        func hex4(_ at: Int) throws(Failure) -> UInt32 {
            guard at + 4 <= body.count else { throw .syntax(at: at) }
            var value: UInt32 = 0
            for offset in 0..<4 {
                guard let digit = hexValue(body[at + offset]) else { throw .syntax(at: at + offset) }
                value = value << 4 | UInt32(digit)
            }
            return value
        }
        while position < body.count {
            let byte = body[position]
            guard byte == UInt8(ascii: "\\") else {
                utf8.append(byte)
                position += 1
                continue
            }
            guard position + 1 < body.count else { throw .syntax(at: position) }
            let escape = body[position + 1]
            position += 2
            switch escape {
            case UInt8(ascii: "\""): utf8.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): utf8.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "/"): utf8.append(UInt8(ascii: "/"))
            case UInt8(ascii: "b"): utf8.append(0x08)
            case UInt8(ascii: "f"): utf8.append(0x0C)
            case UInt8(ascii: "n"): utf8.append(0x0A)
            case UInt8(ascii: "r"): utf8.append(0x0D)
            case UInt8(ascii: "t"): utf8.append(0x09)
            case UInt8(ascii: "u"):
                var code = try hex4(position)
                position += 4
                if (0xD800...0xDBFF).contains(code) {
                    // A high surrogate: a low one must follow, or the text is replaced (U+FFFD),
                    // as JSON parsers commonly do with lone surrogates.
                    let pairs = position + 6 <= body.count && body[position] == UInt8(ascii: "\\") && body[position + 1] == UInt8(ascii: "u")
                    let low = pairs ? try hex4(position + 2) : 0
                    if (0xDC00...0xDFFF).contains(low) {
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        position += 6
                    } else {
                        code = 0xFFFD
                    }
                } else if (0xDC00...0xDFFF).contains(code) {
                    code = 0xFFFD
                }
                let scalar = Unicode.Scalar(code) ?? "\u{FFFD}"
                utf8.append(contentsOf: String(scalar).utf8)
            default:
                throw .syntax(at: position - 1)
            }
        }
        return String(decoding: utf8, as: UTF8.self)
    }

    // MARK: - Scanning

    private var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private mutating func expect(_ byte: UInt8) throws(Failure) {
        guard peek == byte else { throw .syntax(at: index) }
        index += 1
    }

    /// Scans one value starting at `index`, `depth` containers deep.
    private mutating func value(depth: Int) throws(Failure) -> Kind {
        guard let first = peek else { throw .syntax(at: index) }
        switch first {
        case UInt8(ascii: "{"):
            try container(depth: depth + 1, close: UInt8(ascii: "}"), keyed: true)
            return .object
        case UInt8(ascii: "["):
            try container(depth: depth + 1, close: UInt8(ascii: "]"), keyed: false)
            return .array
        case UInt8(ascii: "\""):
            try string()
            return .string
        case UInt8(ascii: "t"):
            try literal("true")
            return .bool
        case UInt8(ascii: "f"):
            try literal("false")
            return .bool
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        default:
            try number()
            return .number
        }
    }

    /// An array or object, iteratively for its members and recursively only for nested
    /// containers, whose depth is checked before descending.
    private mutating func container(depth: Int, close: UInt8, keyed: Bool) throws(Failure) {
        guard depth <= maxDepth else { throw .tooDeep }
        index += 1
        skipWhitespace()
        if peek == close {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            if keyed {
                try string()
                skipWhitespace()
                try expect(UInt8(ascii: ":"))
                skipWhitespace()
            }
            _ = try value(depth: depth)
            skipWhitespace()
            guard let next = peek else { throw .syntax(at: index) }
            index += 1
            if next == UInt8(ascii: ",") { continue }
            guard next == close else { throw .syntax(at: index - 1) }
            return
        }
    }

    private mutating func literal(_ word: StaticString) throws(Failure) {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw .syntax(at: index) }
        let matches = word.withUTF8Buffer { expected in
            expected.indices.allSatisfy { bytes[index + $0] == expected[$0] }
        }
        guard matches else { throw .syntax(at: index) }
        index += count
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    private mutating func number() throws(Failure) {
        if peek == UInt8(ascii: "-") { index += 1 }
        guard let lead = peek, isDigit(lead) else { throw .syntax(at: index) }
        index += 1
        if lead != UInt8(ascii: "0") { skipDigits() }
        if peek == UInt8(ascii: ".") {
            index += 1
            guard let digit = peek, isDigit(digit) else { throw .syntax(at: index) }
            skipDigits()
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            index += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { index += 1 }
            guard let digit = peek, isDigit(digit) else { throw .syntax(at: index) }
            skipDigits()
        }
    }

    private mutating func skipDigits() {
        while let byte = peek, isDigit(byte) { index += 1 }
    }

    /// A string literal: escapes checked, control characters refused, UTF-8 validated.
    private mutating func string() throws(Failure) {
        try expect(UInt8(ascii: "\""))
        while true {
            guard let byte = peek else { throw .syntax(at: index) }
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return
            case UInt8(ascii: "\\"):
                index += 1
                guard let escape = peek else { throw .syntax(at: index) }
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                    UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 1
                case UInt8(ascii: "u"):
                    index += 1
                    for _ in 0..<4 {
                        guard let digit = peek, hexValue(digit) != nil else { throw .syntax(at: index) }
                        index += 1
                    }
                default:
                    throw .syntax(at: index)
                }
            case ..<0x20:
                throw .syntax(at: index)
            case ..<0x80:
                index += 1
            default:
                try utf8Sequence()
            }
        }
    }

    /// One multi-byte UTF-8 sequence (RFC 3629: no overlongs, no surrogates, at most U+10FFFF).
    private mutating func utf8Sequence() throws(Failure) {
        let lead = bytes[index]
        let length: Int
        var lower: UInt8 = 0x80
        var upper: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0:
            length = 3
            lower = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED:
            length = 3
            upper = 0x9F
        case 0xF0:
            length = 4
            lower = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4:
            length = 4
            upper = 0x8F
        default: throw .syntax(at: index)
        }
        guard index + length <= bytes.count else { throw .syntax(at: index) }
        let second = bytes[index + 1]
        guard second >= lower, second <= upper else { throw .syntax(at: index + 1) }
        for offset in 2..<length where bytes[index + offset] & 0xC0 != 0x80 {
            throw .syntax(at: index + offset)
        }
        index += length
    }
}

private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

private func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}
