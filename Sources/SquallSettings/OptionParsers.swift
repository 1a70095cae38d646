// SPDX-License-Identifier: Apache-2.0

import Squall
import SquallCore

/// The parsers the options share: a value of each kind, from the texts a source gave.
extension ServeOption {
    /// One text, parsed by `read`, or `requirement`.
    static func one(
        _ spec: OptionSpec, default value: Value, _ requirement: String, _ read: @escaping @Sendable (String) -> Value?
    ) -> ServeOption {
        ServeOption(spec: spec, defaultValue: value) { texts in
            guard let text = texts.last, let parsed = read(text) else { return .failure(Requirement(requirement)) }
            return .success(parsed)
        }
    }
}

extension ServeOption where Value == Int {
    static func integer(_ spec: OptionSpec, default value: Int, in range: ClosedRange<Int>) -> ServeOption {
        one(spec, default: value, "a whole number from \(range.lowerBound) to \(range.upperBound)") { text in
            Int(text).flatMap { range.contains($0) ? $0 : nil }
        }
    }

    static func size(_ spec: OptionSpec, default value: Int, atLeast minimum: Int = 1) -> ServeOption {
        one(spec, default: value, "a size of at least \(minimum) byte\(minimum == 1 ? "" : "s") (65536, 64KiB, 1MiB)") { text in
            ValueText.byteCount(text).flatMap { $0 >= minimum ? $0 : nil }
        }
    }
}

extension ServeOption where Value == Int? {
    /// A size, or `off`.
    static func sizeOrOff(_ spec: OptionSpec, default value: Int?, in range: ClosedRange<Int>) -> ServeOption {
        ServeOption(spec: spec, defaultValue: value) { texts in
            guard let text = texts.last else { return .failure(Requirement("a size or off")) }
            if text == "off" { return .success(nil) }
            guard let bytes = ValueText.byteCount(text), range.contains(bytes) else {
                return .failure(
                    Requirement(
                        "a size from \(ValueText.text(bytes: range.lowerBound)) to \(ValueText.text(bytes: range.upperBound)) (65536, 64KiB, 1MiB), or off"))
            }
            return .success(bytes)
        }
    }

    /// A whole number, or nothing.
    static func optionalInteger(_ spec: OptionSpec, in range: ClosedRange<Int>) -> ServeOption {
        ServeOption(spec: spec, defaultValue: nil) { texts in
            guard let text = texts.last, let value = Int(text), range.contains(value) else {
                return .failure(Requirement("a whole number from \(range.lowerBound) to \(range.upperBound)"))
            }
            return .success(value)
        }
    }
}

extension ServeOption where Value == Duration {
    /// A duration; `allowsZero` for the options where 0 turns something off.
    static func duration(_ spec: OptionSpec, default value: Duration, allowsZero: Bool = false) -> ServeOption {
        one(spec, default: value, "a duration\(allowsZero ? "" : " above 0") (30, 30s, 5m, 1h)") { text in
            ValueText.duration(text).flatMap { $0 > .zero || allowsZero ? $0 : nil }
        }
    }
}

extension ServeOption where Value == String {
    static func text(_ spec: OptionSpec, default value: String) -> ServeOption {
        one(spec, default: value, "text") { $0 }
    }
}

extension ServeOption where Value == String? {
    static func optionalText(_ spec: OptionSpec) -> ServeOption {
        ServeOption(spec: spec, defaultValue: nil) { texts in
            guard let text = texts.last, !text.isEmpty else { return .failure(Requirement("non-empty text")) }
            return .success(text)
        }
    }
}

extension ServeOption where Value == [String] {
    static func list(_ spec: OptionSpec) -> ServeOption {
        ServeOption(spec: spec, defaultValue: []) { texts in .success(texts.filter { !$0.isEmpty }) }
    }
}

extension ServeOption where Value == Bool {
    static func flag(_ spec: OptionSpec, default value: Bool) -> ServeOption {
        one(spec, default: value, "true or false") { ValueText.boolean($0) }
    }
}

extension ServeOption where Value: RawRepresentable & CaseIterable & Sendable, Value.RawValue == String {
    static func choice(_ spec: OptionSpec, default value: Value) -> ServeOption {
        one(spec, default: value, "one of \(Value.allCases.map(\.rawValue).joined(separator: ", "))") { Value(rawValue: $0) }
    }
}

extension ServeOption where Value == RateLimit? {
    static func rate(_ spec: OptionSpec, default value: RateLimit?) -> ServeOption {
        ServeOption(spec: spec, defaultValue: value) { texts in
            guard let text = texts.last else { return .failure(Requirement("a rate")) }
            if text == "off" { return .success(nil) }
            guard let rate = try? RateLimit(parsing: text) else { return .failure(Requirement("a rate, N/s, N/min or N/h, or off")) }
            return .success(rate)
        }
    }
}
