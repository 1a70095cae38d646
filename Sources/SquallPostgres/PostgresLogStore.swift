import DequeModule
import Dispatch
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PostgresNIO
import SquallCore
import Synchronization

/// Channel logs in one PostgreSQL database that several `squall` nodes share: a
/// ``SharedLogStore`` whose positions are given out by the database, so a channel has one order
/// and one epoch on every node, surviving any node's restart.
///
/// Contracts:
/// - **Group commit.** Appends queue; one writer sends whatever has queued (up to
///   ``maxBatch`` messages) as one call of `squall_append` — one transaction — and answers
///   them all when it commits. One batch is in flight at a time, so a node's messages on a
///   channel keep the order they were published in.
/// - **Fan-out by position.** Each batch notifies `squall` with each channel's new position;
///   every node's ``PostgresListener`` passes it to its hub, which reads what it lacks
///   (``read(_:after:limit:retention:)``). Payloads never travel in notifications (whose limit is
///   8,000 bytes).
/// - **Outage.** A node that cannot reach the database keeps its sockets: appends fail with
///   ``StoreError`` (`store_unavailable`), reads fail and are retried by the hub, and each
///   connection is made again on its next use. When the listener is back, the hub reads what
///   every open channel missed.
/// - **Bounded.** At most `maxQueuedBytes` of messages wait for the writer; an append past it is
///   refused at once. ``open(_:retention:)`` waits at most ``openTimeout`` for the database.
/// - **Retention is the database's**, by the count and age given at init, whichever node
///   appended: the channels appended to are trimmed in one `DELETE` between batches (when the
///   writer is idle, and at least every 16 batches), and messages past their age on channels
///   nobody appends to any more go on the heartbeat, every minute. A trim only ever deletes a
///   prefix of a log (through the newest message past its age), since nodes' clocks differ and
///   a hole would end every node's catch-up there.
///
/// Each store runs its connections on one event loop thread of its own, never the server's,
/// so the blocking ``open(_:retention:)`` cannot hold up the replies it waits for.
public final class PostgresLogStore: SharedLogStore {
    /// Most messages one `squall_append` call carries.
    public static let maxBatch = 1000
    /// Most payload bytes one catch-up read brings (at least one message); more takes more reads.
    public static let maxReadBytes = 4 << 20
    /// Most presence changes waiting for the writer; past it, the oldest are dropped (and logged).
    public static let maxQueuedPresence = 65_536
    /// Longest ``open(_:retention:)`` waits for the database.
    public static let openTimeout = TimeAmount.seconds(3)

    private struct Pending {
        let draft: Draft
        let key: IdempotencyKey?
        let committed: @Sendable (Result<Appended, StoreError>) -> Void
        var cost: Int { draft.payload.count + 256 }
    }

    private struct Queue {
        var items = Deque<Pending>()
        var bytes = 0
        var writing = false
        var closed = false
        /// Channels appended to since their last trim.
        var trims: Set<ChannelName> = []
        var presence: [PresenceEvent] = []
        var batchesSinceTrim = 0
        var drained: [CheckedContinuation<Void, Never>] = []
    }

    /// How often a node says it is alive.
    public static let heartbeat = TimeAmount.seconds(2)
    /// How long after its last heartbeat a node, and everyone subscribed through it, drops out
    /// of presence on the other nodes.
    public static let nodeTimeout = 10.0

    /// Where the database is.
    public let address: PostgresAddress
    public let node = UUID.random()
    private let group: MultiThreadedEventLoopGroup
    private let loop: any EventLoop
    private let writer: PostgresLink
    private let reader: PostgresLink
    private let opener: PostgresLink
    private let listener: PostgresListener
    private let retention: Retention
    private let window: Double
    private let maxQueuedBytes: Int
    private let logger: Logger
    private let queue = Mutex(Queue())
    /// When the last heartbeat that landed was sent.
    private let heartbeats = NIOLockedValueBox(NIODeadline.now())

    /// Connects to the database at `address` and creates or updates Squall's tables there.
    /// - Parameters:
    ///   - retention: what the database keeps of each channel, by count and age (its byte
    ///     bound is each node's, in memory). Give every node the same.
    ///   - idempotency: how long a key is recognised across nodes (its `duration`).
    ///   - maxQueuedBytes: most bytes of messages waiting for the writer (default 64 MiB).
    /// - Throws: ``StoreError`` if the database cannot be reached or its schema created.
    public init(
        address: PostgresAddress,
        retention: Retention = Retention(),
        idempotency: IdempotencyWindow = IdempotencyWindow(),
        maxQueuedBytes: Int = 64 << 20,
        logger: Logger = Logger(label: "squall.postgres")
    ) throws(StoreError) {
        let configuration = try address.configuration()
        self.address = address
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.loop = group.next()
        self.writer = PostgresLink(loop: loop, configuration: configuration, logger: logger)
        self.reader = PostgresLink(loop: loop, configuration: configuration, logger: logger)
        self.opener = PostgresLink(loop: loop, configuration: configuration, logger: logger)
        self.listener = PostgresListener(loop: loop, configuration: configuration, logger: logger)
        self.retention = retention
        self.window = idempotency.duration.inSeconds
        self.maxQueuedBytes = maxQueuedBytes
        self.logger = logger
        do throws(StoreError) {
            try wait(for: migrate(), doing: "set up Squall's tables at \(address)")
        } catch {
            _ = try? wait(for: writer.close(), doing: "close")
            group.shutdownGracefully { _ in }
            throw error
        }
    }

    /// Runs the schema's statements in one transaction, under an advisory lock, so that nodes
    /// starting together do not trip over each other's `CREATE OR REPLACE`.
    private func migrate() -> EventLoopFuture<Void> {
        writer.connection().flatMap { [logger, loop] connection in
            let steps: [PostgresQuery] =
                ["BEGIN", "SELECT pg_advisory_xact_lock(\(PostgresSchema.migrationLock))"]
                + PostgresSchema.statements.map { PostgresQuery(unsafeSQL: $0) } + ["COMMIT"]
            var done = loop.makeSucceededVoidFuture()
            for step in steps {
                done = done.flatMap { connection.query(step, logger: logger).map { _ in } }
            }
            return done.flatMapError { error in
                connection.query("ROLLBACK", logger: logger).flatMapThrowing { _ in throw error }
            }
        }
    }

    // MARK: - SharedLogStore

    public func follow(_ follower: any LogFollower) {
        listener.start(for: follower, node: node)
        beat(for: follower)
    }

    /// Says this node is alive, then tells `follower` which nodes have stopped saying so, and
    /// asks the listener to prove its connection (a dead one is made again, and the follower
    /// resynchronized); again every ``heartbeat`` until the store closes. Every 30th beat also deletes messages past
    /// their age, and the rows of nodes gone for a minute.
    private func beat(for follower: any LogFollower, count: Int = 0) {
        let node = self.node
        let timeout = Self.nodeTimeout
        let cutoff = Date().timeIntervalSince1970 - retention.maxAge.inSeconds
        listener.probe()
        var done = opener.query(
            """
            INSERT INTO squall_nodes (id, seen) VALUES (\(node), extract(epoch FROM clock_timestamp()))
            ON CONFLICT (id) DO UPDATE SET seen = EXCLUDED.seen
            """
        )
        .flatMap { [opener] _ in
            opener.query("SELECT id FROM squall_nodes WHERE seen < extract(epoch FROM clock_timestamp()) - \(timeout)")
        }
        .flatMapThrowing { result -> Set<UUID> in
            try Set(result.rows.map { try $0.decode(UUID.self) })
        }
        if count % 30 == 0 {
            done = done.flatMap { [opener] gone in
                opener.query(
                    """
                    WITH gone AS (DELETE FROM squall_nodes WHERE seen < extract(epoch FROM clock_timestamp()) - 60 RETURNING id)
                    DELETE FROM squall_presence WHERE node IN (SELECT id FROM gone)
                    """
                )
                .flatMap { _ in
                    opener.query(
                        """
                        DELETE FROM squall_messages m
                        USING (SELECT channel, max("offset") AS through FROM squall_messages WHERE time < \(cutoff) GROUP BY channel) old
                        WHERE m.channel = old.channel AND m."offset" <= old.through
                        """
                    )
                }
                .map { _ in gone }
            }
        }
        let started = NIODeadline.now()
        done.whenComplete { [weak follower, self] result in
            if case .success(let gone) = result {
                follower?.nodesGone(gone)
                // Beats that failed or came late for as long as other nodes wait: they have
                // taken this node's members out of presence; announce them again.
                let late = heartbeats.withLockedValue { last in
                    defer { last = started }
                    return started - last > .seconds(Int64(Self.nodeTimeout))
                }
                if late { follower?.resynchronize() }
            }
            guard !queue.withLock(\.closed), follower != nil else { return }
            loop.scheduleTask(in: Self.heartbeat) { [weak follower] in
                if let follower { self.beat(for: follower, count: count + 1) }
            }
        }
    }

    public func members(_ channel: ChannelName) async throws(StoreError) -> [NodeMember] {
        guard !queue.withLock(\.closed) else { throw StoreError("the store is closed") }
        let name = channel.rawValue
        let node = self.node
        let timeout = Self.nodeTimeout
        let found = opener.query(
            """
            SELECT p.node, p.client, p.transport, p.info FROM squall_presence p JOIN squall_nodes n ON n.id = p.node
            WHERE p.channel = \(name) AND p.node <> \(node) AND n.seen >= extract(epoch FROM clock_timestamp()) - \(timeout)
            """
        )
        .flatMapThrowing { result in
            try result.rows.map { row in
                let (node, client, transport, info) = try row.decode((UUID, UUID, String, String?).self)
                return NodeMember(node: node, member: PresenceMember(id: client, info: info.flatMap(Self.info), transport: transport))
            }
        }
        do {
            return try await found.get()
        } catch {
            throw StoreError(postgres: error, doing: "read who is in \(channel)")
        }
    }

    /// A member's info as another node recorded it (it validated it when the client sent it).
    static func info(_ text: String) -> RawJSON? {
        try? RawJSON(validating: ByteBuffer(string: text), limits: RawJSON.Limits(maxBytes: 1 << 20, maxDepth: 64))
    }

    public func announce(_ event: PresenceEvent) {
        let wake = queue.withLock { queue -> Bool in
            guard !queue.closed else { return false }
            if queue.presence.count >= Self.maxQueuedPresence {
                queue.presence.removeFirst(queue.presence.count / 2)
                logger.warning("PostgreSQL presence changes dropped: the database is not keeping up")
            }
            queue.presence.append(event)
            defer { queue.writing = true }
            return !queue.writing
        }
        if wake { loop.execute { self.writeNext() } }
    }

    /// Creates the channel's row if it has none (with a new epoch), then reads its position and
    /// newest messages: the unbroken run of offsets that ends at the last one.
    public func open(_ channel: ChannelName, retention: Retention) throws(StoreError) -> StoredLog {
        guard !queue.withLock(\.closed) else { throw StoreError("the store is closed") }
        return try wait(for: stored(channel, retention: retention), doing: "open channel \(channel)")
    }

    public func append(
        _ draft: Draft,
        idempotencyKey: IdempotencyKey?,
        committed: @escaping @Sendable (Result<Appended, StoreError>) -> Void
    ) throws(StoreError) {
        let pending = Pending(draft: draft, key: idempotencyKey, committed: committed)
        let wake = try queue.withLock { queue throws(StoreError) -> Bool in
            guard !queue.closed else { throw StoreError("the store is closed") }
            guard queue.bytes + pending.cost <= maxQueuedBytes else {
                throw StoreError("too many messages are waiting for PostgreSQL (\(queue.bytes) bytes)")
            }
            queue.items.append(pending)
            queue.bytes += pending.cost
            defer { queue.writing = true }
            return !queue.writing
        }
        if wake { loop.execute { self.writeNext() } }
    }

    public func read(
        _ channel: ChannelName,
        after position: StreamPosition,
        limit: Int,
        retention: Retention
    ) async throws(StoreError) -> CatchUp {
        guard !queue.withLock(\.closed) else { throw StoreError("the store is closed") }
        let name = channel.rawValue
        let after = Int64(clamping: position.offset)
        let found = reader.query(
            """
            SELECT c.epoch, c.last_offset, m."offset", m.id, m.time, m.publisher, m.is_binary, m.payload
            FROM squall_channels c LEFT JOIN LATERAL (
                SELECT * FROM (
                    SELECT *, sum(octet_length(payload)) OVER (ORDER BY "offset") AS running FROM (
                        SELECT * FROM squall_messages WHERE channel = c.name AND "offset" > \(after) ORDER BY "offset" LIMIT \(limit)
                    ) next
                ) counted WHERE running - octet_length(payload) < \(Self.maxReadBytes)
            ) m ON true
            WHERE c.name = \(name)
            ORDER BY m."offset"
            """
        )
        .flatMapThrowing { result -> CatchUp? in
            // nil: not every message after `position` is here (no row, another epoch, a log
            // behind it, or retention took what came next): start again from the store's log.
            var messages: [Message] = []
            var head: UInt64 = 0
            for row in result.rows {
                let (epoch, last, offset, id, time, publisher, binary, payload) = try row.decode(
                    (String, Int64, Int64?, UUID?, Double?, UUID?, Bool?, ByteBuffer?).self
                )
                guard epoch == position.epoch, UInt64(clamping: last) >= position.offset else { return nil }
                head = UInt64(clamping: last)
                guard let offset, let id, let time, let binary, let payload else {
                    return head == position.offset ? .messages([], more: false) : nil
                }
                guard UInt64(clamping: offset) == position.offset + UInt64(messages.count) + 1 else { return nil }
                messages.append(
                    Self.message(channel, StreamPosition(epoch: epoch, offset: UInt64(clamping: offset)), id, time, publisher, binary, payload)
                )
            }
            guard let newest = messages.last else { return nil }
            return .messages(messages, more: newest.offset < head)
        }
        .flatMap { [self] caughtUp -> EventLoopFuture<CatchUp> in
            caughtUp.map { loop.makeSucceededFuture($0) } ?? stored(channel, retention: retention).map { .restart($0) }
        }
        do {
            return try await found.get()
        } catch {
            throw StoreError(postgres: error, doing: "read channel \(channel)")
        }
    }

    public func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let idle = queue.withLock { queue -> Bool in
                queue.closed = true
                guard queue.writing else { return true }
                queue.drained.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
        _ = try? await listener.stop().and(writer.close()).and(reader.close()).and(opener.close()).get()
        try? await group.shutdownGracefully()
    }

    // MARK: - Writer

    private enum Work {
        case append([Pending])
        case presence([PresenceEvent])
        case trim(Set<ChannelName>)
        case idle([CheckedContinuation<Void, Never>])
    }

    /// Sends the next batch or trim; runs on `loop`, one at a time.
    private func writeNext() {
        let work = queue.withLock { queue -> Work in
            if !queue.trims.isEmpty, queue.items.isEmpty || queue.batchesSinceTrim >= 16 {
                defer {
                    queue.trims = []
                    queue.batchesSinceTrim = 0
                }
                return .trim(queue.trims)
            }
            if !queue.presence.isEmpty {
                defer { queue.presence = [] }
                return .presence(queue.presence)
            }
            guard !queue.items.isEmpty else {
                queue.writing = false
                defer { queue.drained = [] }
                return .idle(queue.drained)
            }
            let count = min(queue.items.count, Self.maxBatch)
            let batch = Array(queue.items.prefix(count))
            queue.items.removeFirst(count)
            queue.bytes -= batch.reduce(0) { $0 + $1.cost }
            queue.batchesSinceTrim += 1
            return .append(batch)
        }
        switch work {
        case .idle(let waiting):
            for continuation in waiting { continuation.resume() }
        case .trim(let trims):
            let channels = trims.map(\.rawValue)
            let keep = Int64(retention.maxMessages)
            let cutoff = Date().timeIntervalSince1970 - retention.maxAge.inSeconds
            writer.query(
                """
                DELETE FROM squall_messages m USING squall_channels c
                WHERE c.name = ANY (\(channels)::text[]) AND m.channel = c.name
                    AND m."offset" <= greatest(
                        c.last_offset - \(keep),
                        (SELECT max(o."offset") FROM squall_messages o WHERE o.channel = c.name AND o.time < \(cutoff))
                    )
                """
            )
            .whenComplete { [self] result in
                if case .failure(let error) = result {
                    // The rows stay until the channel's next trim, which covers them.
                    logger.warning("PostgreSQL trim failed", metadata: ["error": "\(StoreError(postgres: error, doing: "trim"))"])
                }
                writeNext()
            }
        case .presence(let events):
            writer.query(presenceQuery(events)).whenComplete { [self] result in
                if case .failure(let error) = result {
                    logger.warning("PostgreSQL presence change failed", metadata: ["error": "\(StoreError(postgres: error, doing: "record presence"))"])
                }
                writeNext()
            }
        case .append(let batch):
            writer.query(appendQuery(batch)).whenComplete { [self] result in
                guard case .failure(let error) = result, (error as? PSQLError)?.serverInfo == nil else {
                    answer(batch, result)
                    writeNext()
                    return
                }
                // The connection failed, not the server: the transaction may have committed
                // before the answer was lost. Ask which of the batch's messages are there.
                // Taking the channels' row locks first waits for that transaction, if it still
                // runs, to end; the lookup then sees what it did.
                writer.query(
                    """
                    SELECT 1 FROM squall_channels WHERE name = ANY (\(batch.map(\.draft.channel.rawValue))) ORDER BY name FOR UPDATE
                    """
                )
                .flatMap { [writer] _ in
                    writer.query(
                        """
                        SELECT id, epoch, "offset" FROM squall_messages WHERE id = ANY (\(batch.map(\.draft.id)))
                        """
                    )
                }
                .whenComplete { [self] lookup in
                    answer(batch, committedOf: lookup, failure: StoreError(postgres: error, doing: "append"))
                    writeNext()
                }
            }
        }
    }

    /// Answers a batch whose commit's outcome was lost: the messages the database has are
    /// committed, the others failed — all of them if the database cannot be asked either. (A
    /// keyed message that matched an earlier one is not there under its own id, so it shows as
    /// failed; a retry with its key finds the first.)
    private func answer(
        _ batch: [Pending],
        committedOf lookup: Result<PostgresQueryResult, any Error>,
        failure: StoreError
    ) {
        var found: [UUID: StreamPosition] = [:]
        if case .success(let rows) = lookup {
            for row in rows.rows {
                guard let (id, epoch, offset) = try? row.decode((UUID, String, Int64).self) else { continue }
                found[id] = StreamPosition(epoch: epoch, offset: UInt64(clamping: offset))
            }
        }
        for pending in batch {
            let draft = pending.draft
            if let position = found[draft.id] {
                pending.committed(.success(Appended(message: draft.message(at: position), isNew: true)))
            } else {
                pending.committed(.failure(failure))
            }
        }
    }

    private func presenceQuery(_ events: [PresenceEvent]) -> PostgresQuery {
        var joins: [Bool] = []
        var channels: [String] = []
        var clients: [UUID] = []
        var transports: [String] = []
        var infos: [String] = []
        for event in events {
            let (join, channel, member) =
                switch event {
                case .join(let channel, let member): (true, channel, member)
                case .leave(let channel, let member): (false, channel, member)
                }
            joins.append(join)
            channels.append(channel.rawValue)
            clients.append(member.id)
            transports.append(member.transport)
            infos.append(member.info.map { String(buffer: $0.bytes) } ?? "")
        }
        return "SELECT squall_presence_change(\(node), \(joins), \(channels), \(clients), \(transports), \(infos))"
    }

    private func appendQuery(_ batch: [Pending]) -> PostgresQuery {
        let channels = batch.map(\.draft.channel.rawValue)
        let ids = batch.map(\.draft.id)
        let times = batch.map(\.draft.time.timeIntervalSince1970)
        let publishers = batch.map { $0.draft.publisher?.text ?? "" }
        let binary = batch.map { $0.draft.payload.kind == .binary }
        let payloads = batch.map(\.draft.payload.bytes)
        let keys = batch.map { $0.key?.rawValue ?? "" }
        return """
            SELECT ord, epoch, "offset", message_id, message_time, fresh FROM squall_append(\(channels), \(ids), \(times), \(publishers), \
            \(binary), \(payloads), \(keys), \(window))
            """
    }

    /// Answers every message of a batch: the position the database gave it, or the error.
    private func answer(_ batch: [Pending], _ result: Result<PostgresQueryResult, any Error>) {
        var positions: [Int: (position: StreamPosition, id: UUID, time: Double, fresh: Bool)] = [:]
        var failure: StoreError?
        switch result {
        case .success(let rows):
            do {
                for row in rows.rows {
                    let (ord, epoch, offset, id, time, fresh) = try row.decode((Int64, String, Int64, UUID, Double, Bool).self)
                    positions[Int(clamping: ord) - 1] = (StreamPosition(epoch: epoch, offset: UInt64(clamping: offset)), id, time, fresh)
                }
            } catch {
                failure = StoreError(postgres: error, doing: "append")
            }
        case .failure(let error):
            failure = StoreError(postgres: error, doing: "append")
        }
        if failure == nil {
            queue.withLock { queue in
                for pending in batch { queue.trims.insert(pending.draft.channel) }
            }
        }
        for (index, pending) in batch.enumerated() {
            if let failure {
                pending.committed(.failure(failure))
            } else if let answer = positions[index] {
                // A key already held answers with the first message's id, time and position.
                let draft = pending.draft
                let message = draft.message(
                    at: answer.position,
                    id: answer.id,
                    time: answer.fresh ? draft.time : Date(timeIntervalSince1970: answer.time)
                )
                pending.committed(.success(Appended(message: message, isNew: answer.fresh)))
            } else {
                pending.committed(.failure(StoreError("PostgreSQL gave no position for a message")))
            }
        }
    }

    // MARK: - Reads

    /// The channel's log as ``open(_:retention:)`` describes it.
    private func stored(_ channel: ChannelName, retention: Retention) -> EventLoopFuture<StoredLog> {
        let name = channel.rawValue
        let epoch = StreamPosition.newEpoch()
        let cutoff = Date().timeIntervalSince1970 - retention.maxAge.inSeconds
        let limit = retention.maxMessages
        let maxBytes = retention.maxBytes
        return opener.query(
            """
            INSERT INTO squall_channels (name, epoch, last_offset) VALUES (\(name), \(epoch), 0) ON CONFLICT (name) DO NOTHING
            """
        )
        .flatMap { [opener] _ in
            // Newest first, while their payloads fit in the retention's byte bound (at least one).
            opener.query(
                """
                SELECT c.epoch, c.last_offset, m."offset", m.id, m.time, m.publisher, m.is_binary, m.payload, m.idempotency_key
                FROM squall_channels c LEFT JOIN LATERAL (
                    SELECT * FROM (
                        SELECT *, sum(octet_length(payload)) OVER (ORDER BY "offset" DESC) AS running FROM (
                            SELECT * FROM squall_messages WHERE channel = c.name AND time >= \(cutoff) ORDER BY "offset" DESC LIMIT \(limit)
                        ) newest
                    ) counted WHERE running - octet_length(payload) < \(maxBytes)
                ) m ON true
                WHERE c.name = \(name)
                ORDER BY m."offset" DESC
                """
            )
        }
        .flatMapThrowing { result -> StoredLog in
            var epoch = ""
            var last: UInt64 = 0
            var newestFirst: [Message] = []
            var keys: [UInt64: IdempotencyKey] = [:]
            for row in result.rows {
                let (rowEpoch, rowLast, offset, id, time, publisher, binary, payload, key) = try row.decode(
                    (String, Int64, Int64?, UUID?, Double?, UUID?, Bool?, ByteBuffer?, String?).self
                )
                epoch = rowEpoch
                last = UInt64(clamping: rowLast)
                guard let offset, let id, let time, let binary, let payload else { break }
                let position = StreamPosition(epoch: rowEpoch, offset: UInt64(clamping: offset))
                // Only the unbroken run that ends at the last offset: a hole would resume a
                // client from the wrong place.
                guard position.offset == (newestFirst.last?.offset ?? last + 1) - 1 else { break }
                newestFirst.append(Self.message(channel, position, id, time, publisher, binary, payload))
                if let key, let parsed = try? IdempotencyKey(key) { keys[position.offset] = parsed }
            }
            guard !epoch.isEmpty else { throw StoreError("channel \(channel) has no row after it was created") }
            return StoredLog(epoch: epoch, lastOffset: last, messages: newestFirst.reversed(), idempotencyKeys: keys)
        }
    }

    /// A message as a row of `squall_messages` holds it (its text was valid UTF-8 when
    /// published).
    private static func message(
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

    /// Waits for `future`, at most ``openTimeout``, from a thread that is not the store's own.
    ///
    /// It blocks its caller, which may be a server's event loop thread (a channel opened by a
    /// WebSocket subscribe): hence the semaphore rather than `EventLoopFuture.wait()`, which
    /// refuses any event loop thread. The store's own thread is refused, since it is the one
    /// that would complete the future.
    private func wait<Value: Sendable>(for future: EventLoopFuture<Value>, doing what: String) throws(StoreError) -> Value {
        guard !loop.inEventLoop else { throw StoreError("cannot \(what) from the store's own thread") }
        let outcome = NIOLockedValueBox<Result<Value, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let settle: @Sendable (Result<Value, any Error>) -> Void = { result in
            let first = outcome.withLockedValue { outcome in
                guard outcome == nil else { return false }
                outcome = result
                return true
            }
            if first { done.signal() }
        }
        future.whenComplete(settle)
        // A wall-clock bound, not one scheduled on `loop`: a loop shut down by close() would
        // drop it, and this thread would wait forever.
        if done.wait(timeout: .now() + .nanoseconds(Int(Self.openTimeout.nanoseconds))) == .timedOut {
            settle(.failure(StoreError("timed out")))
        }
        switch outcome.withLockedValue({ $0 }) {
        case .success(let value): return value
        case .failure(let error): throw StoreError(postgres: error, doing: what)
        case nil: throw StoreError("cannot \(what)")
        }
    }
}
