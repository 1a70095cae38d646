// SPDX-License-Identifier: Apache-2.0

import Configuration
import Foundation
import Squall
import SquallCore
import SystemPackage
import Yams

/// A configuration file, YAML or JSON (by its extension: `.json` is JSON, anything else YAML,
/// of which JSON is also a subset): its values through swift-configuration's `FileProvider`, and
/// its shape — every key known, every value of the right kind, each with its line — checked
/// with Yams, whose nodes carry their lines (swift-configuration's snapshots keep neither lines
/// nor a list of their keys).
///
/// Keys are the flags' names (`port: 8000`, `log-level: warning`, `allowed-origin: [...]`); the
/// `auth:` section holds the token options (`auth: {mode: required, jwt-secret: ...}`),
/// `default-namespace:` the options of channels outside every namespace, and `namespaces:` one
/// mapping of options per namespace.
struct ConfigFile: Sendable {
    let path: String
    /// The line of each key, dotted as the provider is asked (`auth.mode`, `namespaces.chat.presence`).
    let lines: [String: Int]
    /// The namespaces the file defines, by name.
    let namespaceNames: [String]
    let hasDefaultNamespace: Bool
    private let provider: any ConfigProvider

    /// Most bytes of a configuration file.
    static let maxBytes = 4 << 20

    static func load(_ path: String) async throws(SettingError) -> ConfigFile {
        let source = SettingSource.file(path: path, line: nil)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SettingError(key: "config", value: path, source: nil, problem: "cannot be read")
        }
        guard data.count <= maxBytes, let text = String(data: data, encoding: .utf8) else {
            throw SettingError(key: "config", value: path, source: nil, problem: "is not UTF-8 text of at most 4 MiB")
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw SettingError(key: "config", value: path, source: nil, problem: "does not parse: \(error)")
        }
        var shape = Shape(path: path)
        if let root {
            try shape.check(root)
        }
        let provider: any ConfigProvider
        do {
            if root == nil {
                // An empty file, or one of comments only: no option set (YAMLSnapshot refuses it).
                provider = InMemoryProvider(name: path, values: [:])
            } else if path.lowercased().hasSuffix(".json") {
                provider = try await FileProvider<JSONSnapshot>(filePath: FilePath(path))
            } else {
                provider = try await FileProvider<YAMLSnapshot>(filePath: FilePath(path))
            }
        } catch {
            throw SettingError(key: "config", value: path, source: source, problem: "does not parse: \(error)")
        }
        return ConfigFile(
            path: path, lines: shape.lines, namespaceNames: shape.namespaces, hasDefaultNamespace: shape.hasDefaultNamespace, provider: provider)
    }

    /// Where `key` is set.
    func source(_ key: String) -> SettingSource { .file(path: path, line: lines[key]) }

    /// The texts the file gives `key` (dotted), or `nil` when it does not set it. A scalar is one
    /// text, a list many; numbers and booleans as they are written back.
    func texts(_ key: String) throws(SettingError) -> [String]? {
        guard lines[key] != nil else { return nil }
        let configKey = AbsoluteConfigKey(key.split(separator: ".").map(String.init))
        for type in [ConfigType.string, .int, .double, .bool, .stringArray, .intArray, .doubleArray, .boolArray] {
            guard let result = try? provider.value(forKey: configKey, type: type), let value = result.value else { continue }
            switch value.content {
            case .string(let text): return [text]
            case .int(let number): return ["\(number)"]
            case .double(let number): return ["\(number)"]
            case .bool(let flag): return ["\(flag)"]
            case .stringArray(let texts): return texts
            case .intArray(let numbers): return numbers.map { "\($0)" }
            case .doubleArray(let numbers): return numbers.map { "\($0)" }
            case .boolArray(let flags): return flags.map { "\($0)" }
            default: continue
            }
        }
        throw SettingError(key: key, value: nil, source: source(key), problem: "has a value of a kind no option takes")
    }

    /// Walks the document: every key known, each value of the kind its option takes.
    private struct Shape {
        let path: String
        var lines: [String: Int] = [:]
        var namespaces: [String] = []
        var hasDefaultNamespace = false

        init(path: String) {
            self.path = path
        }

        mutating func check(_ root: Node) throws(SettingError) {
            guard let mapping = root.mapping else { throw problem("config", root, "must be a mapping of option names to values") }
            for (keyNode, value) in mapping {
                let key = try name(keyNode, in: nil)
                switch key {
                case "auth":
                    for (key, node) in try section(value, prefix: "auth") {
                        guard let spec = Options.byFileKey["auth.\(key)"] else {
                            throw problem("auth.\(key)", node, "is not an auth option; one of \(Self.authKeys)")
                        }
                        try self.value(node, for: spec, key: "auth.\(key)")
                    }
                case Options.defaultNamespaceSection:
                    hasDefaultNamespace = true
                    try namespace(value, prefix: key)
                case Options.namespacesSection:
                    guard let names = value.mapping else { throw problem(key, value, "must be a mapping of namespace names to their options") }
                    for (nameNode, options) in names {
                        let name = try self.name(nameNode, in: key)
                        guard !name.isEmpty, !name.contains(":"), (try? ChannelName(name)) != nil else {
                            throw problem("\(key).\(name)", nameNode, "is not a namespace name: a channel name's part before ':'")
                        }
                        namespaces.append(name)
                        try namespace(options, prefix: "\(key).\(name)")
                    }
                default:
                    guard let spec = Options.byFileKey[key], !key.contains(".") else {
                        throw problem(key, keyNode, "is not an option; squall config defaults lists them all")
                    }
                    try self.value(value, for: spec, key: key)
                }
            }
        }

        static var authKeys: String {
            Options.all.compactMap { $0.fileKey }.filter { $0.hasPrefix("auth.") }.map { String($0.dropFirst(5)) }.joined(separator: ", ")
        }

        private mutating func namespace(_ node: Node, prefix: String) throws(SettingError) {
            for (key, value) in try section(node, prefix: prefix) {
                guard NamespaceOptions.keys.contains(key) else {
                    throw problem("\(prefix).\(key)", value, "is not a namespace option; one of \(NamespaceOptions.keys.joined(separator: ", "))")
                }
                guard value.scalar != nil else { throw problem("\(prefix).\(key)", value, "must be a single value") }
                lines["\(prefix).\(key)"] = Self.line(value)
            }
        }

        /// A section's keys and values.
        private func section(_ node: Node, prefix: String) throws(SettingError) -> [(String, Node)] {
            guard let mapping = node.mapping else { throw problem(prefix, node, "must be a mapping") }
            var entries: [(String, Node)] = []
            for (keyNode, value) in mapping {
                entries.append((try name(keyNode, in: prefix), value))
            }
            return entries
        }

        private mutating func value(_ node: Node, for spec: OptionSpec, key: String) throws(SettingError) {
            switch spec.arity {
            case .one, .none:
                guard node.scalar != nil else { throw problem(key, node, "must be a single value (\(spec.valueName)), not a list or a mapping") }
            case .list:
                if let items = node.sequence {
                    guard items.allSatisfy({ $0.scalar != nil }) else { throw problem(key, node, "must be a list of values (\(spec.valueName))") }
                } else if node.scalar == nil {
                    throw problem(key, node, "must be a value or a list of values (\(spec.valueName))")
                }
            }
            lines[key] = Self.line(node)
        }

        private func name(_ node: Node, in section: String?) throws(SettingError) -> String {
            guard let name = node.scalar?.string else { throw problem(section ?? "config", node, "has a key that is not text") }
            return name
        }

        private static func line(_ node: Node) -> Int? { node.mark?.line }

        private func problem(_ key: String, _ node: Node, _ text: String) -> SettingError {
            SettingError(key: key, value: node.scalar?.string, source: .file(path: path, line: Self.line(node)), problem: text)
        }
    }
}
