// SPDX-License-Identifier: Apache-2.0

/// The tables and the append function a PostgreSQL database holds for Squall, created (or
/// brought up to date) by every node when it starts, one node at a time. Functions are
/// replaced in place (`CREATE OR REPLACE`), so nodes already running keep calling them while
/// another starts.
///
/// - `squall_channels`: each channel's epoch, last offset and when its last message was
///   published (`updated`, which the meta TTL counts from). A row is made by a channel's first
///   append, never by a read. Appends lock a channel's row, so offsets are given out in one
///   order across all nodes.
/// - `squall_messages`: the retained messages, by channel and offset, with the idempotency key
///   each was published under; indexed by time, so that deleting by age reads what it deletes.
/// - `squall_append(...)`: appends one batch (arrays, one element per message; `''` for no
///   publisher or key) in one transaction: it creates channels it has not seen and locks their
///   rows, in name order (so that two nodes' batches cannot deadlock), answers keys already held
///   within the window with the first message's position — `fresh` false for a retry of the
///   same payload, NULL for a key used for another — gives the rest the next offsets, and
///   notifies `squall` with `EPOCH OFFSET CHANNEL` for each channel: a position, never a payload.
/// - `squall_publish(channel, data, idempotency_key)`: what an application calls inside its own
///   transaction to publish (text, or `bytea` for a binary message): one `squall_append`, so the
///   message is delivered if and only if the transaction commits, in offset order with every
///   node's publishes (docs/scaling.md).
/// - `squall_nodes`: each live node's id, when it last said so and its figures then
///   (``PostgresNodes``).
/// - `squall_presence`: who is subscribed where, by node; `squall_presence_change(...)` records
///   joins and leaves and notifies `squall_presence` with `J NODE CHANNEL CLIENT TRANSPORT USER INFO`
///   (`USER`: the member's user id in hex, `-` for none)
///   or `L NODE CHANNEL CLIENT` (an info over 7,000 bytes, past NOTIFY's 8,000, travels
///   only in the table: other nodes see it when they next open the channel).
enum PostgresSchema {
    /// A number no other program's advisory lock is likely to use: "SQUA".
    static let migrationLock: Int64 = 0x5351_5541

    /// The statements, in order.
    static let statements: [String] = [
        """
        CREATE TABLE IF NOT EXISTS squall_nodes (
            id uuid PRIMARY KEY,
            seen double precision NOT NULL
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS squall_presence (
            channel text NOT NULL,
            client uuid NOT NULL,
            node uuid NOT NULL,
            transport text NOT NULL,
            info text,
            PRIMARY KEY (channel, client, node)
        )
        """,
        """
        DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'squall_presence' AND column_name = 'user_id') THEN
                ALTER TABLE squall_presence ADD COLUMN user_id text;
            END IF;
        END $$
        """,
        """
        CREATE OR REPLACE FUNCTION squall_presence_change(
            p_node uuid, p_joins boolean[], p_channels text[], p_clients uuid[], p_transports text[], p_infos text[], p_users text[]
        ) RETURNS void LANGUAGE plpgsql AS $$
        DECLARE
            i integer;
        BEGIN
            FOR i IN 1 .. coalesce(array_length(p_joins, 1), 0) LOOP
                IF p_joins[i] THEN
                    INSERT INTO squall_presence (channel, client, node, transport, info, user_id)
                        VALUES (p_channels[i], p_clients[i], p_node, p_transports[i], NULLIF(p_infos[i], ''), NULLIF(p_users[i], ''))
                        ON CONFLICT DO NOTHING;
                    PERFORM pg_notify('squall_presence', 'J ' || p_node || ' ' || p_channels[i] || ' ' || p_clients[i] || ' '
                        || p_transports[i] || ' ' || CASE WHEN p_users[i] = '' THEN '-' ELSE encode(convert_to(p_users[i], 'UTF8'), 'hex') END
                        || ' ' || CASE WHEN octet_length(p_infos[i]) <= 7000 - 2 * octet_length(p_users[i]) THEN p_infos[i] ELSE '' END);
                ELSE
                    DELETE FROM squall_presence WHERE channel = p_channels[i] AND client = p_clients[i] AND node = p_node;
                    PERFORM pg_notify('squall_presence', 'L ' || p_node || ' ' || p_channels[i] || ' ' || p_clients[i]);
                END IF;
            END LOOP;
        END
        $$
        """,
        """
        CREATE TABLE IF NOT EXISTS squall_channels (
            name text PRIMARY KEY,
            epoch text NOT NULL,
            last_offset bigint NOT NULL
        )
        """,
        // Changes to tables already there are made only when missing, checked in the catalog
        // first: ALTER TABLE and CREATE INDEX lock the table even when there is nothing to do,
        // and every running node's appends would wait for a starting one.
        """
        DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'squall_channels' AND column_name = 'updated') THEN
                ALTER TABLE squall_channels ADD COLUMN updated double precision NOT NULL DEFAULT extract(epoch FROM clock_timestamp());
            END IF;
            IF to_regclass('squall_channels_updated') IS NULL THEN
                CREATE INDEX squall_channels_updated ON squall_channels (updated);
            END IF;
        END $$
        """,
        """
        CREATE TABLE IF NOT EXISTS squall_messages (
            channel text NOT NULL,
            "offset" bigint NOT NULL,
            epoch text NOT NULL,
            id uuid NOT NULL,
            time double precision NOT NULL,
            publisher uuid,
            is_binary boolean NOT NULL,
            payload bytea NOT NULL,
            idempotency_key text,
            PRIMARY KEY (channel, "offset")
        )
        """,
        """
        DO $$ BEGIN
            IF to_regclass('squall_messages_idempotency') IS NULL THEN
                CREATE INDEX squall_messages_idempotency ON squall_messages (channel, idempotency_key) WHERE idempotency_key IS NOT NULL;
            END IF;
            IF to_regclass('squall_messages_time') IS NULL THEN
                CREATE INDEX squall_messages_time ON squall_messages (time);
            END IF;
        END $$
        """,
        // Lifecycle events waiting for their webhooks' receivers, and those that ran out of
        // retries; a row is leased (next_at moved on) by the node delivering it.
        """
        CREATE TABLE IF NOT EXISTS squall_webhook_outbox (
            id uuid PRIMARY KEY,
            type text NOT NULL,
            time double precision NOT NULL,
            namespace text,
            body bytea NOT NULL,
            attempts integer NOT NULL DEFAULT 0,
            next_at double precision NOT NULL,
            delivered_to text[] NOT NULL DEFAULT '{}'
        )
        """,
        "CREATE INDEX IF NOT EXISTS squall_webhook_outbox_due ON squall_webhook_outbox (next_at)",
        """
        CREATE TABLE IF NOT EXISTS squall_webhook_dead (
            id uuid PRIMARY KEY,
            type text NOT NULL,
            time double precision NOT NULL,
            body bytea NOT NULL,
            reason text NOT NULL,
            failed_at double precision NOT NULL
        )
        """,
        "ALTER TABLE squall_nodes ADD COLUMN IF NOT EXISTS expired boolean NOT NULL DEFAULT false",
        "ALTER TABLE squall_nodes ADD COLUMN IF NOT EXISTS stats jsonb",
        """
        CREATE OR REPLACE FUNCTION squall_append(
            p_channels text[], p_ids uuid[], p_times double precision[], p_publishers text[],
            p_binary boolean[], p_payloads bytea[], p_keys text[], p_window double precision
        ) RETURNS TABLE (ord bigint, epoch text, "offset" bigint, message_id uuid, message_time double precision, fresh boolean) LANGUAGE plpgsql AS $$
        #variable_conflict use_column
        BEGIN
            -- Made or locked, in name order; a row the janitor has not deleted yet is kept alive.
            INSERT INTO squall_channels AS c (name, epoch, last_offset, updated)
                SELECT u, substr(md5(random()::text || clock_timestamp()::text), 1, 8), 0, extract(epoch FROM clock_timestamp())
                FROM (SELECT DISTINCT u FROM unnest(p_channels) AS u) AS d ORDER BY u
                ON CONFLICT (name) DO UPDATE SET updated = greatest(c.updated, EXCLUDED.updated);
            RETURN QUERY
            WITH b AS (
                SELECT u.channel, u.id, u.time, NULLIF(u.publisher, '')::uuid AS publisher, u.is_binary, u.payload,
                    NULLIF(u.key, '') AS key, u.ord
                FROM unnest(p_channels, p_ids, p_times, p_publishers, p_binary, p_payloads, p_keys)
                    WITH ORDINALITY AS u (channel, id, time, publisher, is_binary, payload, key, ord)
            ), seen AS (
                SELECT DISTINCT ON (b.ord) b.ord, m.epoch, m."offset", m.id, m.time,
                    CASE WHEN m.payload = b.payload AND m.is_binary = b.is_binary THEN false END AS fresh
                FROM b JOIN squall_channels c ON c.name = b.channel
                JOIN squall_messages m ON m.channel = b.channel AND m.epoch = c.epoch AND m.idempotency_key = b.key AND m.time > b.time - p_window
                WHERE b.key IS NOT NULL
                ORDER BY b.ord, m."offset"
            ), fresh AS (
                SELECT b.*, c.epoch, c.last_offset + row_number() OVER (PARTITION BY b.channel ORDER BY b.ord) AS "offset"
                FROM b JOIN squall_channels c ON c.name = b.channel
                WHERE NOT EXISTS (SELECT 1 FROM seen WHERE seen.ord = b.ord)
            ), inserted AS (
                INSERT INTO squall_messages (channel, "offset", epoch, id, time, publisher, is_binary, payload, idempotency_key)
                    SELECT f.channel, f."offset", f.epoch, f.id, f.time, f.publisher, f.is_binary, f.payload, f.key FROM fresh f
            ), advanced AS (
                UPDATE squall_channels c SET last_offset = x.last, updated = greatest(c.updated, x.newest)
                FROM (SELECT f.channel, max(f."offset") AS last, max(f.time) AS newest FROM fresh f GROUP BY f.channel) x
                WHERE c.name = x.channel
            )
            SELECT f.ord, f.epoch, f."offset", f.id, f.time, true FROM fresh f
            UNION ALL SELECT s.ord, s.epoch, s."offset", s.id, s.time, s.fresh FROM seen s;
            PERFORM pg_notify('squall', c.epoch || ' ' || c.last_offset || ' ' || c.name) FROM squall_channels c WHERE c.name = ANY (p_channels);
        END
        $$
        """,
        // Publishing from the application's own SQL: squall_append for one message, inside the
        // caller's transaction. Its row and its notification take effect if and only if that
        // transaction commits (PostgreSQL delivers NOTIFY at commit), and its offset is taken
        // under the channel row's lock, in order with every node's publishes — which wait for
        // the caller's commit meanwhile, so the transaction should be short.
        """
        CREATE OR REPLACE FUNCTION squall_publish_payload(p_channel text, p_data bytea, p_binary boolean, p_idempotency_key text)
        RETURNS TABLE (epoch text, "offset" bigint, id uuid, fresh boolean) LANGUAGE plpgsql AS $$
        BEGIN
            IF p_channel IS NULL OR p_channel !~ '^[A-Za-z0-9_.:@-]{1,128}$' THEN
                RAISE EXCEPTION 'squall_publish: "%" is not a channel name: 1 to 128 of A-Z a-z 0-9 _ - . : @', p_channel USING ERRCODE = '22023';
            END IF;
            IF p_data IS NULL OR octet_length(p_data) > 16777216 THEN
                RAISE EXCEPTION 'squall_publish: the data must be at most 16 MiB' USING ERRCODE = '22023';
            END IF;
            IF p_idempotency_key IS NOT NULL AND p_idempotency_key !~ '^[!-~]{1,255}$' THEN
                RAISE EXCEPTION 'squall_publish: an idempotency key is 1 to 255 visible ASCII characters' USING ERRCODE = '22023';
            END IF;
            RETURN QUERY SELECT a.epoch, a."offset", a.message_id, a.fresh FROM squall_append(
                ARRAY[p_channel], ARRAY[gen_random_uuid()], ARRAY[extract(epoch FROM clock_timestamp())::double precision], ARRAY[''],
                ARRAY[p_binary], ARRAY[p_data], ARRAY[coalesce(p_idempotency_key, '')], 300) AS a;
        END
        $$
        """,
        // The forms an application calls: text (UTF-8, delivered as a text message) and bytes.
        """
        CREATE OR REPLACE FUNCTION squall_publish(p_channel text, p_data text, p_idempotency_key text DEFAULT NULL)
        RETURNS TABLE (epoch text, "offset" bigint, id uuid, fresh boolean) LANGUAGE sql AS $$
            SELECT * FROM squall_publish_payload(p_channel, convert_to(p_data, 'UTF8'), false, p_idempotency_key)
        $$
        """,
        """
        CREATE OR REPLACE FUNCTION squall_publish(p_channel text, p_data bytea, p_idempotency_key text DEFAULT NULL)
        RETURNS TABLE (epoch text, "offset" bigint, id uuid, fresh boolean) LANGUAGE sql AS $$
            SELECT * FROM squall_publish_payload(p_channel, p_data, true, p_idempotency_key)
        $$
        """,
    ]
}
