/// A place in a channel's log: the offset of the last message seen, within an epoch.
///
/// Offsets grow by one per message in a channel, starting at 1; offset 0 is "before the first
/// message". The epoch is an opaque string that changes whenever a log starts afresh (the memory
/// log after a restart, or after an idle channel was forgotten), because offsets from an older
/// epoch say nothing about the new log. Written as text it is `EPOCH:OFFSET`, e.g. `k3x9q2:41`,
/// the form used in HTTP `since=` parameters and SSE event ids.
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

    /// A new epoch: 8 random base-36 characters, for a log that starts afresh (in memory, or a
    /// channel a shared store has not seen).
    public static func newEpoch() -> String {
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyz")
        var generator = SystemRandomNumberGenerator()
        return String((0..<8).map { _ in alphabet[Int(generator.next(upperBound: UInt(alphabet.count)))] })
    }
}
