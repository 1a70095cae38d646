// SPDX-License-Identifier: Apache-2.0

/// The command line's options, as `squall serve` and `squall config check` take them: `--KEY
/// VALUE`, `--KEY=VALUE`, and a bare `--KEY` for a switch. Every flag is an option of
/// ``Options/all``; anything else is an error naming it.
struct FlagArguments: Sendable {
    /// The texts of each option given, in order, by key.
    private(set) var values: [String: [String]] = [:]

    init(_ arguments: [String]) throws(SettingError) {
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("--"), argument.count > 2 else {
                throw SettingError(
                    key: argument, value: nil, source: nil, problem: "is not an option; options are --KEY VALUE (squall serve --help lists them)")
            }
            let body = argument.dropFirst(2)
            let (name, inline) = body.firstIndex(of: "=").map { (String(body[..<$0]), String(body[body.index(after: $0)...])) } ?? (String(body), nil)
            guard let spec = Options.byKey[name] else {
                throw SettingError(key: "--\(name)", value: nil, source: nil, problem: "is not an option of squall serve (squall serve --help lists them)")
            }
            let value: String
            if let inline {
                value = inline
            } else if spec.arity == .none {
                value = "true"
            } else {
                guard index < arguments.endIndex else {
                    throw SettingError(key: spec.key, value: nil, source: .flag(spec.flag), problem: "needs a value (\(spec.valueName))")
                }
                value = arguments[index]
                index += 1
            }
            values[spec.key, default: []].append(value)
        }
    }
}
