// SPDX-License-Identifier: Apache-2.0

import Foundation

/// A place in a channel's log: the offset of the last message seen, within an epoch.
///
/// Offsets grow by one per message in a channel, starting at 1; offset 0 is "before the first
/// message". The epoch is an opaque string that changes whenever a log starts afresh (the memory
/// log after a restart, or after an idle channel was forgotten), because offsets from an older
/// epoch say nothing about the new log. Written as text it is `EPOCH:OFFSET`, e.g. `k3x9q2:41`,
/// the form used in HTTP `since=` parameters and SSE event ids.
///
/// A channel a durable store holds nothing for (nothing was ever published to it, or it was
/// forgotten after ``Retention/metaTTL``) has no epoch yet: its position is
/// ``unpublished(at:)``, `~SECONDS:0`, which says when the node that gave it out knew the
/// channel to be empty. Such a position resumes into the channel's first epoch while it is
/// younger than the meta TTL: no life of the channel can have begun and been forgotten since.
public struct StreamPosition: Hashable, Sendable, CustomStringConvertible {
    /// The log's epoch.
    public var epoch: String
    /// The offset of the last message seen; 0 before the first.
    public var offset: UInt64

    /// A position.
    public init(epoch: String, offset: UInt64) {
        self.epoch = epoch
        self.offset = offset
    }

    /// Parses `EPOCH:OFFSET`; `nil` if the text is not of that form.
    public init?(_ text: some StringProtocol) {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        let epoch = text[..<colon]
        let digits = text[text.index(after: colon)...]
        guard !epoch.isEmpty, !digits.isEmpty, digits.utf8.allSatisfy({ (48...57).contains($0) }),
            let offset = UInt64(digits)
        else { return nil }
        self.init(epoch: String(epoch), offset: offset)
    }

    /// `EPOCH:OFFSET`.
    public var description: String { "\(epoch):\(offset)" }

    /// The position of a channel nothing has been published to, as known at `time`.
    public static func unpublished(at time: Date) -> StreamPosition {
        let seconds = Int64(exactly: time.timeIntervalSince1970.rounded(.down)) ?? 0  // trap-ok: `exactly:` gives nil, never traps
        return StreamPosition(epoch: "~\(seconds)", offset: 0)
    }

    /// For a position given out while its channel was unpublished (``unpublished(at:)``): when.
    public var unpublishedAt: Date? {
        guard offset == 0, epoch.first == "~", let seconds = Int64(epoch.dropFirst()), seconds >= 0 else { return nil }
        return Date(timeIntervalSince1970: Double(seconds))
    }

    /// A new epoch: 8 random base-36 characters, for a log that starts afresh (in memory, or at
    /// a channel's first message in a store that held nothing for it).
    public static func newEpoch() -> String {
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyz")
        var generator = SystemRandomNumberGenerator()
        return String((0..<8).map { _ in alphabet[Int(generator.next(upperBound: UInt(alphabet.count)))] })
    }
}
