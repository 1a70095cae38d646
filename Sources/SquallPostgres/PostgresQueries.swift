// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore
import PostgresNIO
import SquallCore

/// The statements a node sends, built in one place, and the rows they answer with decoded in
/// one place.
enum PostgresQueries {
    /// One `squall_append` call for a batch of drafts (see ``PostgresSchema``); with `events`
    /// (which drafts get one), each new message's `published` event is inserted into the
    /// outbox in the same statement, and so the same transaction.
    static func append(_ batch: [PostgresWriter.Pending], window: Double, events: [Bool]? = nil) -> PostgresQuery {
        let channels = batch.map(\.draft.channel.rawValue)
        let ids = batch.map(\.draft.id)
        let times = batch.map(\.draft.time.timeIntervalSince1970)
        let publishers = batch.map { $0.draft.publisher?.text ?? "" }
        let binary = batch.map { $0.draft.payload.kind == .binary }
        let payloads = batch.map(\.draft.payload.bytes)
        let keys = batch.map { $0.key?.rawValue ?? "" }
        guard let events, events.contains(true) else {
            return """
                SELECT ord, epoch, "offset", message_id, message_time, fresh FROM squall_append(\(channels), \(ids), \(times), \(publishers), \
                \(binary), \(payloads), \(keys), \(window))
                """
        }
        return """
            WITH appended AS (
                SELECT ord, epoch, "offset", message_id, message_time, fresh FROM squall_append(\(channels), \(ids), \(times), \(publishers), \
                \(binary), \(payloads), \(keys), \(window))
            ), recorded AS (
                INSERT INTO squall_webhook_outbox (id, type, time, namespace, body, next_at)
                SELECT gen_random_uuid(), 'published', a.message_time, CASE WHEN c.name LIKE '%:%' THEN split_part(c.name, ':', 1) ELSE '' END,
                    convert_to(jsonb_build_object(
                        'type', 'published',
                        'timestamp', to_char(to_timestamp(a.message_time) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                        'data', jsonb_strip_nulls(jsonb_build_object(
                            'channel', c.name, 'epoch', a.epoch, 'id', upper(a.message_id::text), 'offset', a."offset",
                            'publisher', nullif(p.publisher, ''), 'time', round(a.message_time * 1000)::bigint))
                    )::text, 'UTF8'), a.message_time
                FROM appended a
                JOIN unnest(\(channels)::text[]) WITH ORDINALITY AS c(name, ord) ON c.ord = a.ord
                JOIN unnest(\(publishers)::text[]) WITH ORDINALITY AS p(publisher, ord) ON p.ord = a.ord
                JOIN unnest(\(events)::boolean[]) WITH ORDINALITY AS e(wanted, ord) ON e.ord = a.ord
                WHERE a.fresh AND e.wanted
                ON CONFLICT (id) DO NOTHING
            )
            SELECT ord, epoch, "offset", message_id, message_time, fresh FROM appended
            """
    }

    /// Marks the nodes silent for `timeout` as expired — each once, by whichever node gets there
    /// first — and records, in the same statement, a `presence_expired` event per channel
    /// their members were on (of `namespaces`; all when `nil`).
    static func expiredPresence(timeout: Double, namespaces: Set<String>?) -> PostgresQuery {
        let all = namespaces == nil
        let names = Array(namespaces ?? [])
        return """
            WITH gone AS (
                UPDATE squall_nodes SET expired = true
                WHERE seen < extract(epoch FROM clock_timestamp()) - \(timeout) AND NOT expired RETURNING id
            )
            INSERT INTO squall_webhook_outbox (id, type, time, namespace, body, next_at)
            SELECT gen_random_uuid(), 'presence_expired', extract(epoch FROM clock_timestamp()), ns,
                convert_to(jsonb_build_object(
                    'type', 'presence_expired',
                    'timestamp', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                    'data', jsonb_build_object('channel', channel, 'node', upper(node::text), 'clients', clients)
                )::text, 'UTF8'),
                extract(epoch FROM clock_timestamp())
            FROM (
                SELECT p.node, p.channel, CASE WHEN p.channel LIKE '%:%' THEN split_part(p.channel, ':', 1) ELSE '' END AS ns,
                    jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                        'id', upper(p.client::text), 'transport', p.transport, 'user', nullif(p.user_id, ''), 'info', p.info::jsonb))) AS clients
                FROM squall_presence p JOIN gone ON p.node = gone.id
                GROUP BY p.node, p.channel
            ) expired
            WHERE \(all) OR ns = ANY (\(names)::text[])
            """
    }

    /// Deletes what the database no longer retains of `channels` by count and age: only ever a
    /// prefix of each log (through the newest message past its age), since nodes' clocks differ
    /// and a hole would end every node's catch-up there.
    static func trim(_ channels: Set<ChannelName>, retention: Retention) -> PostgresQuery {
        let names = channels.map(\.rawValue)
        let keep = Int64(retention.maxMessages)
        let cutoff = Date().timeIntervalSince1970 - retention.maxAge.inSeconds
        return """
            DELETE FROM squall_messages m USING squall_channels c
            WHERE c.name = ANY (\(names)::text[]) AND m.channel = c.name
                AND m."offset" <= greatest(
                    c.last_offset - \(keep),
                    (SELECT max(o."offset") FROM squall_messages o WHERE o.channel = c.name AND o.time < \(cutoff))
                )
            """
    }

    /// The logs of `channels` as ``SharedLog/open(_:retention:)`` gives them: each one's position
    /// and its newest messages, newest first, while their payloads fit in the retention's byte
    /// bound (at least one). Channels without a row answer nothing.
    static func open(_ channels: [ChannelName], retention: Retention) -> PostgresQuery {
        let names = channels.map(\.rawValue)
        let cutoff = Date().timeIntervalSince1970 - retention.maxAge.inSeconds
        let limit = retention.maxMessages
        let maxBytes = retention.maxBytes
        return """
            SELECT c.name, c.epoch, c.last_offset, m."offset", m.id, m.time, m.publisher, m.is_binary, m.payload, m.idempotency_key
            FROM squall_channels c LEFT JOIN LATERAL (
                SELECT * FROM (
                    SELECT *, sum(octet_length(payload)) OVER (ORDER BY "offset" DESC) AS running FROM (
                        SELECT * FROM squall_messages WHERE channel = c.name AND time >= \(cutoff) ORDER BY "offset" DESC LIMIT \(limit)
                    ) newest
                ) counted WHERE running - octet_length(payload) < \(maxBytes)
            ) m ON true
            WHERE c.name = ANY (\(names)::text[])
            ORDER BY c.name, m."offset" DESC
            """
    }

    /// Each channel's log from the rows of ``open(_:retention:)``: the unbroken run of offsets
    /// that ends at its last one (a hole would resume a client from the wrong place).
    static func logs(from result: PostgresQueryResult) throws -> [ChannelName: StoredLog] {
        var logs: [ChannelName: StoredLog] = [:]
        var current: (channel: ChannelName, epoch: String, last: UInt64, newestFirst: [Message], keys: [UInt64: IdempotencyKey], complete: Bool)?
        func finish() {
            guard let current else { return }
            logs[current.channel] = StoredLog(
                epoch: current.epoch, lastOffset: current.last, messages: current.newestFirst.reversed(), idempotencyKeys: current.keys)
        }
        for row in result.rows {
            let (name, epoch, last, offset, id, time, publisher, binary, payload, key) = try row.decode(
                (String, String, Int64, Int64?, UUID?, Double?, UUID?, Bool?, ByteBuffer?, String?).self
            )
            guard let channel = try? ChannelName(name) else { continue }
            if current?.channel != channel {
                finish()
                current = (channel, epoch, UInt64(clamping: last), [], [:], false)
            }
            guard current?.complete == false, let offset, let id, let time, let binary, let payload else { continue }
            let position = StreamPosition(epoch: epoch, offset: UInt64(clamping: offset))
            guard position.offset == (current?.newestFirst.last?.offset ?? UInt64(clamping: last) + 1) - 1 else {
                current?.complete = true
                continue
            }
            current?.newestFirst.append(message(channel, position, id, time, publisher, binary, payload))
            if let key, let parsed = try? IdempotencyKey(key) { current?.keys[position.offset] = parsed }
        }
        finish()
        return logs
    }

    /// Up to `limit` messages of `channel` after `offset`, with the channel's position on every
    /// row (one row with no message when none follows), no more than `maxBytes` of payload (at
    /// least one message).
    static func read(_ channel: ChannelName, after offset: UInt64, limit: Int, maxBytes: Int) -> PostgresQuery {
        let name = channel.rawValue
        let after = Int64(clamping: offset)
        return """
            SELECT c.epoch, c.last_offset, m."offset", m.id, m.time, m.publisher, m.is_binary, m.payload
            FROM squall_channels c LEFT JOIN LATERAL (
                SELECT * FROM (
                    SELECT *, sum(octet_length(payload)) OVER (ORDER BY "offset") AS running FROM (
                        SELECT * FROM squall_messages WHERE channel = c.name AND "offset" > \(after) ORDER BY "offset" LIMIT \(limit)
                    ) next
                ) counted WHERE running - octet_length(payload) < \(maxBytes)
            ) m ON true
            WHERE c.name = \(name)
            ORDER BY m."offset"
            """
    }

    /// Records joins and leaves (see ``PostgresSchema``).
    static func presence(_ changes: [PresenceChange], node: UUID) -> PostgresQuery {
        var joins: [Bool] = []
        var channels: [String] = []
        var clients: [UUID] = []
        var transports: [String] = []
        var infos: [String] = []
        var users: [String] = []
        for change in changes {
            if case .join = change { joins.append(true) } else { joins.append(false) }
            channels.append(change.channel.rawValue)
            clients.append(change.member.id)
            transports.append(change.member.transport)
            infos.append(change.member.info.map { String(buffer: $0.bytes) } ?? "")
            users.append(change.member.user ?? "")
        }
        return "SELECT squall_presence_change(\(node), \(joins), \(channels), \(clients), \(transports), \(infos), \(users))"
    }

    /// A message as a row of `squall_messages` holds it (its text was valid UTF-8 when
    /// published).
    static func message(
        _ channel: ChannelName,
        _ position: StreamPosition,
        _ id: UUID,
        _ time: Double,
        _ publisher: UUID?,
        _ binary: Bool,
        _ payload: ByteBuffer
    ) -> Message {
        Message(
            channel: channel,
            position: position,
            id: id,
            time: Date(timeIntervalSince1970: time),
            publisher: publisher,
            payload: binary ? .binary(payload) : .text(utf8: payload)
        )
    }

    /// A member's info as another node recorded it (it validated it when the client sent it).
    /// A user id as `squall_presence` notifications write it: hex of its UTF-8, `-` for none.
    static func user(hex text: Substring) -> String? {
        let digits = Array(text.utf8)
        guard text != "-", digits.count.isMultiple(of: 2) else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        for pair in stride(from: 0, to: digits.count, by: 2) {
            guard let high = hexValue(digits[pair]), let low = hexValue(digits[pair + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        default: nil
        }
    }

    static func info(_ text: String) -> RawJSON? {
        try? RawJSON(validating: ByteBuffer(string: text), limits: RawJSON.Limits(maxBytes: 1 << 20, maxDepth: 64))
    }
}
