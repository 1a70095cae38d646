// SPDX-License-Identifier: Apache-2.0

/// The text forms every option's value is written in, on the command line, in the environment
/// and in a configuration file alike.
public enum ValueText {
    /// A duration: a plain number of seconds (`30`, `0.5`) or one with a unit — `ms`, `s`, `m`,
    /// `h`, `d` (`30s`, `5m`, `1h`); at most a billion seconds (about 32 years).
    public static func duration(_ text: String) -> Duration? {
        let units: [(suffix: String, seconds: Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        let unit = units.first { text.hasSuffix($0.suffix) && Double(text.dropLast($0.suffix.count)) != nil } ?? ("", 1)
        guard let number = Double(text.dropLast(unit.suffix.count)), number >= 0, number.isFinite else { return nil }
        let seconds = number * unit.seconds
        guard seconds <= 1_000_000_000 else { return nil }
        return Duration(seconds: seconds, atMost: .seconds(1_000_000_000))
    }

    /// A size in bytes: a plain number or one with a binary suffix (`65536`, `64KiB`, `1MiB`,
    /// `1GiB`, `512B`).
    public static func byteCount(_ text: String) -> Int? {
        let units: [(suffix: String, factor: Int)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("B", 1)]
        let unit = units.first { text.hasSuffix($0.suffix) } ?? ("", 1)
        guard let number = Int(text.dropLast(unit.suffix.count)), number >= 0 else { return nil }
        let (bytes, overflow) = number.multipliedReportingOverflow(by: unit.factor)
        return overflow ? nil : bytes
    }

    /// A boolean: `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`.
    public static func boolean(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "true", "yes", "on", "1": true
        case "false", "no", "off", "0": false
        default: nil
        }
    }

    /// A duration as the options write it back: `90s`, `5m`, `1h`, `0.5s`.
    public static func text(_ duration: Duration) -> String {
        let seconds = duration.inSeconds
        for (unit, size) in [("d", 86400.0), ("h", 3600.0), ("m", 60.0)] where seconds >= size && seconds.truncatingRemainder(dividingBy: size) == 0 {
            return "\(Int(seconds / size))\(unit)"  // trap-ok: at most a billion seconds
        }
        return seconds == seconds.rounded() ? "\(Int(seconds))s" : "\(seconds)s"  // trap-ok: at most a billion seconds
    }

    /// A size as the options write it back: `1MiB`, `64KiB`, `1000`.
    public static func text(bytes: Int) -> String {
        for (unit, size) in [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] where bytes >= size && bytes % size == 0 {
            return "\(bytes / size)\(unit)"
        }
        return "\(bytes)"
    }
}
