// SPDX-License-Identifier: Apache-2.0

import SquallCore

/// A token's grant of channels: an exact name (`news`), a name with `*` standing for any run of
/// characters (`chat:*`, `*`), and `{sub}` for the token's own user id (`user:{sub}`), filled in
/// when the token is read so that a user's grant never reaches another's channel.
public struct ChannelPattern: Sendable, Hashable, CustomStringConvertible {
    /// The pattern with `{sub}` filled in.
    public let text: String
    private let parts: [Substring]

    /// The pattern `text` for the user `user` (`{sub}` becomes `user`; with no user, a pattern
    /// naming `{sub}` matches nothing).
    public init?(_ text: String, user: String?) {
        if text.contains("{sub}") {
            guard let user, !user.isEmpty, !user.contains("*") else { return nil }
            self.text = text.replacingOccurrences(of: "{sub}", with: user)
        } else {
            self.text = text
        }
        self.parts = self.text.split(separator: "*", omittingEmptySubsequences: false)
    }

    public var description: String { text }

    /// Whether `channel` is one of the pattern's.
    public func matches(_ channel: ChannelName) -> Bool {
        Self.matches(parts[...], channel.description[...])
    }

    /// Glob matching with `*` only: the first part is a prefix, the last a suffix, and the ones
    /// between appear in order (greedy leftmost is exact for `*`-only globs).
    private static func matches(_ parts: ArraySlice<Substring>, _ name: Substring) -> Bool {
        guard let first = parts.first else { return name.isEmpty }
        guard parts.count > 1 else { return name == first }
        guard name.hasPrefix(first) else { return false }
        var rest = name.dropFirst(first.count)
        let last = parts[parts.endIndex - 1]
        for middle in parts.dropFirst().dropLast() where !middle.isEmpty {
            guard let range = rest.range(of: middle) else { return false }
            rest = rest[range.upperBound...]
        }
        return rest.count >= last.count && rest.hasSuffix(last)
    }
}
