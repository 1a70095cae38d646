import ArgumentParser
import Foundation
import Logging
import Squall
import SquallCore
import SquallSQLite

/// A log level as `--log-level` and `SQUALL_LOG_LEVEL` take it: `trace`, `debug`, `info`,
/// `notice`, `warning`, `error` or `critical`. (A type of its own rather than a conformance of
/// swift-log's `Logger.Level` to ArgumentParser's protocol, which neither package owns.)
struct LogLevel: ExpressibleByArgument {
    let level: Logger.Level

    init(_ level: Logger.Level) {
        self.level = level
    }

    init?(argument: String) {
        guard let level = Logger.Level(rawValue: argument) else { return nil }
        self.level = level
    }

    static var allValueStrings: [String] {
        Logger.Level.allCases.map(\.rawValue)
    }
}

/// A size in bytes, written as a plain number or with a binary suffix: `65536`, `64KiB`, `1MiB`.
struct ByteCount: ExpressibleByArgument {
    let bytes: Int

    init(_ bytes: Int) {
        self.bytes = bytes
    }

    init?(argument: String) {
        let units: [(suffix: String, factor: Int)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("B", 1)]
        let unit = units.first { argument.hasSuffix($0.suffix) } ?? ("", 1)
        guard let number = Int(argument.dropLast(unit.suffix.count)), number >= 0 else { return nil }
        let (bytes, overflow) = number.multipliedReportingOverflow(by: unit.factor)
        guard !overflow else { return nil }
        self.bytes = bytes
    }
}

/// The smallest message to compress with permessage-deflate, as a ``ByteCount``, or `off`.
struct DeflateMinimum: ExpressibleByArgument {
    let options: DeflateOptions?

    init(_ options: DeflateOptions?) {
        self.options = options
    }

    init?(argument: String) {
        guard let size = OptionalByteCount(argument: argument) else { return nil }
        options = size.bytes.map { DeflateOptions(minimumSize: $0) }
    }
}

/// A duration in (possibly fractional) seconds: `30`, `0.5`; at most a billion (about 32 years).
struct Seconds: ExpressibleByArgument {
    static let maximum: Double = 1_000_000_000

    let duration: Duration

    init(_ duration: Duration) {
        self.duration = duration
    }

    init?(argument: String) {
        guard let seconds = Double(argument), seconds >= 0, seconds <= Self.maximum else { return nil }
        self.duration = Duration(seconds: seconds, atMost: .seconds(Self.maximum))
    }
}

/// Option values taken from `SQUALL_*` environment variables when the command line has none.
struct EnvironmentOptions {
    private let variables: [String: String]

    init(_ variables: [String: String]) {
        self.variables = variables
    }

    /// `values` if any were given on the command line, else the variable `name` split at
    /// commas (blank entries dropped), else none.
    func resolve(_ values: [String], _ name: String) -> [String] {
        guard values.isEmpty, let raw = variables[name] else { return values }
        return raw.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// `value` if given on the command line, else the variable `name` parsed like the
    /// option, else `defaultValue`. An unparsable variable is an error, never ignored.
    func resolve<Value: ExpressibleByArgument>(_ value: Value?, _ name: String, default defaultValue: Value) throws -> Value {
        try resolve(value, name) ?? defaultValue
    }

    /// `value` if given on the command line, else the variable `name` parsed like the
    /// option, else `nil`.
    func resolve<Value: ExpressibleByArgument>(_ value: Value?, _ name: String) throws -> Value? {
        if let value { return value }
        guard let raw = variables[name], !raw.isEmpty else { return nil }
        guard let parsed = Value(argument: raw) else {
            throw ValidationError("environment variable \(name)=\(raw) is not a valid value")
        }
        return parsed
    }
}

/// A rate as `--publish-rate` and `--subscribe-rate` take it — `N/s`, `N/min` or `N/h` — or `off`.
struct RateLimitOption: ExpressibleByArgument {
    let rate: RateLimit?

    init(_ rate: RateLimit?) {
        self.rate = rate
    }

    init?(argument: String) {
        if argument == "off" {
            rate = nil
        } else if let rate = try? RateLimit(parsing: argument) {
            self.rate = rate
        } else {
            return nil
        }
    }
}

/// A ``ByteCount``, or `off` for none.
struct OptionalByteCount: ExpressibleByArgument {
    let bytes: Int?

    init(_ bytes: Int?) {
        self.bytes = bytes
    }

    init?(argument: String) {
        if argument == "off" {
            bytes = nil
        } else if let count = ByteCount(argument: argument) {
            bytes = count.bytes
        } else {
            return nil
        }
    }
}

/// Where logs are kept, as `--store` takes it: `memory`, `sqlite:PATH` for a SQLite
/// database file (created if missing), or a `postgres://` URL for a PostgreSQL database that
/// several nodes share.
enum StoreOption: ExpressibleByArgument, Equatable {
    case memory
    case sqlite(path: String)
    case postgres(url: String)

    init?(argument: String) {
        if argument == "memory" {
            self = .memory
        } else if argument.hasPrefix("sqlite:"), argument.count > "sqlite:".count {
            self = .sqlite(path: String(argument.dropFirst("sqlite:".count)))
        } else if argument.hasPrefix("postgres://") || argument.hasPrefix("postgresql://") {
            self = .postgres(url: argument)
        } else {
            return nil
        }
    }
}

/// `--sqlite-sync`: `normal` (a commit survives the process crashing) or `full` (a power loss too).
extension SQLiteLogStore.Durability: ExpressibleByArgument {}

extension ClientAddresses.ForwardingHeader: ExpressibleByArgument {}
