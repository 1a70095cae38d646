// SPDX-License-Identifier: Apache-2.0

import Configuration

/// The four places a setting can come from, asked in order — the command line, then the
/// environment, then the configuration file — each answer with its source; nothing set means
/// the option's default.
///
/// The environment is read through swift-configuration's `EnvironmentVariablesProvider` (a
/// list comma-separated), the file through its `FileProvider` (``ConfigFile``). Each provider
/// is asked directly rather than through a `ConfigReader`, whose getters fall back to the
/// default on a value of the wrong type and do not say which provider answered: here a bad
/// value is an error naming its source.
struct SettingsSources: Sendable {
    let flags: FlagArguments
    let environment: EnvironmentVariablesProvider
    let file: ConfigFile?

    /// What `spec` is set to, and where; `nil` when nothing sets it.
    func texts(_ spec: OptionSpec) throws(SettingError) -> (texts: [String], source: SettingSource)? {
        if let values = flags.values[spec.key] { return (values, .flag(spec.flag)) }
        if let name = spec.environment {
            let key = AbsoluteConfigKey([name.lowercased()])
            let type: ConfigType = spec.arity == .list ? .stringArray : .string
            if let value = try? environment.value(forKey: key, type: type).value {
                switch value.content {
                case .string(let text) where !text.isEmpty: return ([text], .environment(name))
                case .stringArray(let texts) where !texts.isEmpty: return (texts, .environment(name))
                default: break
                }
            }
        }
        if let file, let key = spec.fileKey, let texts = try file.texts(key) {
            return (texts, file.source(key))
        }
        return nil
    }
}
