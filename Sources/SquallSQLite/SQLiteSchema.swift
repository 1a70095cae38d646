// SPDX-License-Identifier: Apache-2.0

import Foundation
import GRDB

/// The tables a SQLite file holds for Squall, created if missing and brought up to date when a
/// store opens it.
///
/// - `channels(name, epoch, last_offset, updated, is_first)`: each channel's position, when its
///   last message was published (the meta TTL counts from there), and whether its epoch is its
///   first since the file held nothing for it (``StoredLog/isFirst``).
/// - `messages(channel, epoch, seq, id, time, publisher, binary, payload, idempotency_key)`: the
///   retained messages.
/// - `webhook_outbox(id, type, time, namespace, body, attempts, next_at, delivered_to)`: lifecycle
///   events waiting for their receivers; `webhook_dead(id, type, time, body, reason, failed_at)`:
///   those that ran out of retries.
/// - Indexes on `messages(time)` and `channels(updated)`, so that deleting by age and forgetting
///   channels by their meta TTL read only what they delete.
enum SQLiteSchema {
    static func migrate(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE IF NOT EXISTS channels (name TEXT PRIMARY KEY, epoch TEXT NOT NULL, last_offset INTEGER NOT NULL);
                CREATE TABLE IF NOT EXISTS messages (
                    channel TEXT NOT NULL, epoch TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL,
                    time REAL NOT NULL, publisher TEXT, binary INTEGER NOT NULL, payload BLOB NOT NULL,
                    idempotency_key TEXT, UNIQUE (channel, epoch, seq)
                );
                CREATE INDEX IF NOT EXISTS messages_time ON messages (time);
                """
        )
        let columns = Set(try Row.fetchAll(db, sql: "PRAGMA table_info(channels)").map { $0["name"] as String })
        if !columns.contains("updated") {
            // A file from before the meta TTL: each channel counts from its newest message, or
            // from now if it has none left.
            try db.execute(
                sql: """
                    ALTER TABLE channels ADD COLUMN updated REAL NOT NULL DEFAULT 0;
                    UPDATE channels SET updated = coalesce(
                        (SELECT max(time) FROM messages WHERE messages.channel = channels.name), CAST(strftime('%s', 'now') AS REAL));
                    """
            )
        }
        if !columns.contains("is_first") {
            try db.execute(sql: "ALTER TABLE channels ADD COLUMN is_first INTEGER NOT NULL DEFAULT 1")
        }
        try db.execute(sql: "CREATE INDEX IF NOT EXISTS channels_updated ON channels (updated)")
        try db.execute(
            sql: """
                CREATE TABLE IF NOT EXISTS webhook_outbox (
                    id TEXT PRIMARY KEY, type TEXT NOT NULL, time REAL NOT NULL, namespace TEXT, body BLOB NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL, delivered_to TEXT NOT NULL DEFAULT '[]'
                );
                CREATE INDEX IF NOT EXISTS webhook_outbox_due ON webhook_outbox (next_at);
                CREATE TABLE IF NOT EXISTS webhook_dead (
                    id TEXT PRIMARY KEY, type TEXT NOT NULL, time REAL NOT NULL, body BLOB NOT NULL, reason TEXT NOT NULL, failed_at REAL NOT NULL
                );
                CREATE INDEX IF NOT EXISTS webhook_dead_failed ON webhook_dead (failed_at);
                """
        )
    }
}
