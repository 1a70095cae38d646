// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore
import PostgresNIO
import SquallCore

/// A node's reads: channels' logs when its hub opens them (many channels in one query), and the
/// catch-up reads that bring what other nodes appended. Neither creates anything: a channel
/// nobody published to has no row, and reading it leaves none.
///
/// Opens and catch-ups have a connection each, so that a node catching up after an outage does
/// not hold up the channels its clients are opening, nor the other way round.
struct PostgresReader: Sendable {
    /// Most payload bytes one catch-up read brings (at least one message); more takes more reads.
    static let maxReadBytes = 4 << 20

    let opener: PostgresLink
    let reader: PostgresLink

    func open(_ channels: [ChannelName], retention: Retention) async throws(StoreError) -> [ChannelName: StoredLog] {
        do {
            let result = try await opener.query(PostgresQueries.open(channels, retention: retention)).get()
            return try PostgresQueries.logs(from: result)
        } catch {
            throw StoreError(postgres: error, doing: "open \(channels.count) channel(s)")
        }
    }

    func read(_ channel: ChannelName, after position: StreamPosition, limit: Int, retention: Retention) async throws(StoreError) -> CatchUp {
        do {
            let result = try await reader.query(PostgresQueries.read(channel, after: position.offset, limit: limit, maxBytes: Self.maxReadBytes)).get()
            if let caughtUp = try Self.caughtUp(channel, after: position, from: result) { return caughtUp }
            let logs = try PostgresQueries.logs(from: try await opener.query(PostgresQueries.open([channel], retention: retention)).get())
            return .restart(logs[channel])
        } catch {
            throw StoreError(postgres: error, doing: "read channel \(channel)")
        }
    }

    /// What follows `position`, or `nil` when not every message after it is there (no row,
    /// another epoch, a log behind it, or retention took what came next): the log starts again
    /// from the store's. From an unpublished position, the channel's first messages follow; a
    /// channel still without a row has none.
    private static func caughtUp(_ channel: ChannelName, after position: StreamPosition, from result: PostgresQueryResult) throws -> CatchUp? {
        let unpublished = position.unpublishedAt != nil
        var messages: [Message] = []
        var head: UInt64 = 0
        var rows = 0
        for row in result.rows {
            rows += 1
            let (epoch, last, offset, id, time, publisher, binary, payload) = try row.decode(
                (String, Int64, Int64?, UUID?, Double?, UUID?, Bool?, ByteBuffer?).self
            )
            guard unpublished || epoch == position.epoch, UInt64(clamping: last) >= position.offset else { return nil }
            head = UInt64(clamping: last)
            guard let offset, let id, let time, let binary, let payload else {
                return head == position.offset ? .messages([], more: false) : nil
            }
            guard UInt64(clamping: offset) == position.offset + UInt64(messages.count) + 1 else { return nil }
            messages.append(
                PostgresQueries.message(channel, StreamPosition(epoch: epoch, offset: UInt64(clamping: offset)), id, time, publisher, binary, payload)
            )
        }
        if rows == 0 && unpublished { return .messages([], more: false) }
        guard let newest = messages.last else { return nil }
        return .messages(messages, more: newest.offset < head)
    }
}
