// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import Squall
import SquallCore
import Testing

@testable import SquallSettings

/// Settings from their four sources — flags, `SQUALL_*` variables, a YAML or JSON file,
/// defaults — with the source of each value, and errors that name the key, the value and the
/// source.
@Suite struct SettingsTests {
    /// A configuration file with `text`, removed after the test.
    static func file(_ text: String, extension name: String = "yaml") throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("squall-\(UUID().uuidString).\(name)").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func load(_ arguments: [String] = [], _ environment: [String: String] = [:]) async throws -> Settings {
        try await Settings.load(arguments: arguments, environment: environment)
    }

    static func failure(_ arguments: [String] = [], _ environment: [String: String] = [:]) async -> SettingError? {
        do {
            _ = try await Settings.load(arguments: arguments, environment: environment)
            return nil
        } catch {
            return error
        }
    }

    static func source(_ settings: Settings, _ key: String) -> SettingSource? {
        settings.effective.first { $0.key == key }?.source
    }

    @Test func aFlagWinsOverTheEnvironmentWhichWinsOverTheFileWhichWinsOverTheDefault() async throws {
        let path = try Self.file("port: 8001\nlog-level: warning\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let environment = ["SQUALL_PORT": "8002", "SQUALL_CONFIG": path]

        let flagged = try await Self.load(["--port", "8003"], environment)
        #expect(flagged.configuration.port == 8003)
        #expect(Self.source(flagged, "port") == .flag("--port"))

        let fromEnvironment = try await Self.load([], environment)
        #expect(fromEnvironment.configuration.port == 8002)
        #expect(Self.source(fromEnvironment, "port") == .environment("SQUALL_PORT"))

        let fromFile = try await Self.load(["--config", path])
        #expect(fromFile.configuration.port == 8001)
        #expect(Self.source(fromFile, "port") == .file(path: path, line: 1))
        #expect(fromFile.logLevel == .warning)
        #expect(Self.source(fromFile, "log-level") == .file(path: path, line: 2))

        let defaults = try await Self.load()
        #expect(defaults.configuration.port == 8000)
        #expect(Self.source(defaults, "port") == .defaultValue)
    }

    @Test func aListComesFromRepeatedFlagsACommaSeparatedVariableOrAFileList() async throws {
        let path = try Self.file("allowed-origin: [https://a.example, https://b.example]\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fromFile = try await Self.load(["--config", path])
        #expect(fromFile.configuration.origins.allowed == ["https://a.example", "https://b.example"])
        let fromEnvironment = try await Self.load(["--config", path], ["SQUALL_ALLOWED_ORIGINS": "https://c.example, https://d.example"])
        #expect(fromEnvironment.configuration.origins.allowed == ["https://c.example", "https://d.example"])
        let fromFlags = try await Self.load(["--allowed-origin", "https://e.example", "--allowed-origin=https://f.example"])
        #expect(fromFlags.configuration.origins.allowed == ["https://e.example", "https://f.example"])
    }

    @Test(arguments: [("90", 90.0), ("90s", 90), ("5m", 300), ("1h", 3600), ("1.5", 1.5), ("2d", 172_800)])
    func durationsReadAsSecondsOrWithAUnit(text: String, seconds: Double) async throws {
        let settings = try await Self.load(["--retention-age", text, "--history-meta-ttl", "30d"])
        #expect(settings.configuration.retention.maxAge == .seconds(seconds))
    }

    @Test func sizesReadAsBytesOrWithABinaryUnit() async throws {
        let settings = try await Self.load(["--max-message-size", "64KiB", "--outbox-bytes", "2MiB", "--retention-bytes", "1000"])
        #expect(settings.configuration.maxMessageSize == 65536)
        #expect(settings.configuration.outbox.maxBytes == 2 << 20)
        #expect(settings.configuration.retention.maxBytes == 1000)
    }

    @Test func aBadValueIsAnErrorNamingTheKeyTheValueAndItsSource() async throws {
        let flag = try #require(await Self.failure(["--port", "eighty"]))
        #expect(flag.description == "port \"eighty\" (flag --port): is not a whole number from 0 to 65535")
        let variable = try #require(await Self.failure([], ["SQUALL_RETENTION_AGE": "soon"]))
        #expect(variable.description.hasPrefix("retention-age \"soon\" (environment SQUALL_RETENTION_AGE): is not a duration"))
        let path = try Self.file("host: 127.0.0.1\nmax-message-size: huge\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fromFile = try #require(await Self.failure(["--config", path]))
        #expect(fromFile.description.hasPrefix("max-message-size \"huge\" (\(path):2): is not a size"))
    }

    @Test func anUnknownKeyIsAnErrorWithItsLine() async throws {
        let path = try Self.file("port: 8000\nprot: 8001\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = try #require(await Self.failure(["--config", path]))
        #expect(error.key == "prot")
        #expect(error.source == .file(path: path, line: 2))
        let unknownFlag = try #require(await Self.failure(["--prot", "8001"]))
        #expect(unknownFlag.key == "--prot")
        let authPath = try Self.file("auth:\n  mode: required\n  secret: x\n")
        defer { try? FileManager.default.removeItem(atPath: authPath) }
        let auth = try #require(await Self.failure(["--config", authPath]))
        #expect(auth.key == "auth.secret")
        #expect(auth.source == .file(path: authPath, line: 3))
    }

    @Test func aValueOfTheWrongKindIsAnError() async throws {
        let list = try Self.file("port: [8000, 8001]\n")
        let mapping = try Self.file("host:\n  name: localhost\n")
        let section = try Self.file("auth: required\n")
        defer { for path in [list, mapping, section] { try? FileManager.default.removeItem(atPath: path) } }
        let listError = try #require(await Self.failure(["--config", list]))
        #expect(listError.key == "port")
        #expect(listError.problem.contains("single value"))
        let mappingError = try #require(await Self.failure(["--config", mapping]))
        #expect(mappingError.key == "host")
        #expect(mappingError.source == .file(path: mapping, line: 2))
        let sectionError = try #require(await Self.failure(["--config", section]))
        #expect(sectionError.key == "auth")
    }

    @Test func aJSONFileIsReadToo() async throws {
        let path = try Self.file(#"{"port": 8005, "allowed-origin": ["https://a.example"], "auth": {"jwt-leeway": "1s"}}"#, extension: "json")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let settings = try await Self.load(["--config", path])
        #expect(settings.configuration.port == 8005)
        #expect(settings.configuration.origins.allowed == ["https://a.example"])
        #expect(settings.configuration.auth.leeway == .seconds(1))
        let bad = try Self.file(#"{"port": "x"}"#, extension: "json")
        defer { try? FileManager.default.removeItem(atPath: bad) }
        let error = try #require(await Self.failure(["--config", bad]))
        #expect(error.description.hasPrefix("port \"x\" (\(bad):1)"))
    }

    @Test func theDefaultsFileIsAcceptedUnchangedAndChangesNothing() async throws {
        let path = try Self.file(OptionReference.defaultsFile)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fromFile = try await Self.load(["--config", path])
        let defaults = try await Self.load()
        let values = { (settings: Settings) in Dictionary(settings.effective.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first }) }
        for (key, value) in values(defaults) {
            #expect(values(fromFile)[key] == value, "\(key)")
        }
        // The bounds it leaves unset follow the server's, as with no file.
        #expect(fromFile.configuration.defaultNamespace == NamespaceOptions())
    }

    @Test func namespacesAreBuiltFromTheFilesDictionaries() async throws {
        let path = try Self.file(
            """
            namespaces:
              chat:
                history-size: 100
                history-age: 1h
                presence: true
                join-leave: false
                subscribe: authenticated
                publish: subscribers
                presence-read: subscribers
                private: false
                max-message-size: 64KiB
                publish-rate: 10/s
              secret:
                private: true
            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let settings = try await Self.load(["--config", path])
        let chat = try #require(settings.configuration.namespaces["chat"])
        #expect(chat.historySize == 100)
        #expect(chat.historyAge == .seconds(3600))
        #expect(!chat.joinLeave)
        #expect(chat.subscribe == .authenticated)
        #expect(chat.publish == .subscribers)
        #expect(chat.presenceRead == .subscribers)
        #expect(chat.maxMessageSize == 65536)
        #expect(chat.publishRate?.perSecond == 10)
        #expect(settings.configuration.namespaces["secret"]?.isPrivate == true)
        #expect(Self.source(settings, "namespaces.chat.publish") == .file(path: path, line: 8))

        let bad = try Self.file("namespaces:\n  chat:\n    publish: sometimes\n")
        defer { try? FileManager.default.removeItem(atPath: bad) }
        let error = try #require(await Self.failure(["--config", bad]))
        #expect(error.description == "namespaces.chat.publish \"sometimes\" (\(bad):3): is not one of anyone, authenticated, subscribers, none")
    }

    @Test func tokensNeedAKeyWhenRequiredAndSecretsAreNeverPrinted() async throws {
        let missing = try #require(await Self.failure(["--auth", "required"]))
        #expect(missing.key == "auth")
        let short = try #require(await Self.failure(["--jwt-secret", "short"]))
        #expect(short.key == "jwt-secret")
        #expect(!short.description.contains("short"))
        let secret = String(repeating: "s", count: 32)
        let settings = try await Self.load(["--auth", "required", "--jwt-secret", secret, "--store", "postgres://squall:hunter2@127.0.0.1/squall"])
        #expect(settings.configuration.auth.mode == .required)
        #expect(settings.configuration.auth.keys == [.secret(secret)])
        let printed = OptionReference.effective(settings)
        #expect(!printed.contains(secret))
        #expect(!printed.contains("hunter2"))
    }

    @Test func theThreadsAreReadBeforeAnythingRunsFromEverySource() throws {
        let path = try Self.file("threads: 3\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(EarlySettings.threads(arguments: ["squall", "--threads", "2"], environment: [:]) == 2)
        #expect(EarlySettings.threads(arguments: ["squall", "serve", "--threads=5"], environment: ["SQUALL_THREADS": "4"]) == 5)
        #expect(EarlySettings.threads(arguments: ["squall"], environment: ["SQUALL_THREADS": "4"]) == 4)
        #expect(EarlySettings.threads(arguments: ["squall", "--config", path], environment: [:]) == 3)
        #expect(EarlySettings.threads(arguments: ["squall", "--threads", "0"], environment: [:]) == nil)
    }
}
