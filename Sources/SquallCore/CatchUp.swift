// SPDX-License-Identifier: Apache-2.0

/// What a catch-up read of a ``SharedLog`` found.
public enum CatchUp: Sendable {
    /// The messages after the position asked for, oldest first (none if it is the last), and
    /// whether more follow them (the read stopped at its count or byte bound).
    case messages([Message], more: Bool)
    /// Not every message after that position is there any more: the log to start again from;
    /// `nil` when the store holds nothing for the channel now (it forgot it after its meta TTL).
    case restart(StoredLog?)
}
