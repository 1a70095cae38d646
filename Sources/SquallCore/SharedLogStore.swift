import Foundation

/// A log store that several nodes share, such as one PostgreSQL database: the store, not the
/// hub, gives each message its position, and it tells every node's hub when a channel's log grew.
///
/// Where a ``LogStore`` serves one hub, which assigns positions itself, a shared store is also
/// a broker: a message published on any node is appended once, in the database, and reaches
/// every node's subscribers from there, in that one order.
///
/// Contracts:
/// - **Positions come from the store.** ``append(_:idempotencyKey:committed:)`` takes a message
///   without one; `committed` gets the position the store gave it. Offsets grow by one per
///   message in a channel's epoch, across all nodes, and survive any node's restart.
/// - **One way in.** The hub adds a message to its log only in offset order: its own commits
///   when they are next, and everything else by ``read(_:after:limit:retention:)`` — the
///   catch-up read it makes when a commit or a notification shows its log is behind. A lost
///   notification therefore costs latency, never a message.
/// - **Notifications carry positions, not payloads.** ``follow(_:)`` hands the store the hub to
///   tell; the store calls ``LogFollower/advanced(_:to:)`` when a channel's log grew (on any node),
///   and ``LogFollower/resynchronize()`` when it may have missed some (its link to the database
///   came back), so that every open channel reads what it missed.
/// - **Retention is the store's.** It deletes by count and age across all nodes, never because
///   one node's window let a message go (a node's byte bound counts its own copies).
/// - **Acknowledge after commit.** As for ``LogStore``: `committed(.success)` only once the message
///   is durable; `.failure` means no node will ever see it.
/// - **Presence spans nodes.** The hub tells the store who joins and leaves on this node
///   (``announce(_:)``); the store tells every other node's hub (``LogFollower/joined(_:_:on:)``,
///   ``LogFollower/left(_:client:on:)``), gives the members on other nodes when a channel opens
///   (``members(_:)``), and says which nodes stopped saying they are alive (``LogFollower/nodesGone(_:)``) so that
///   a node that died drops out of presence.
/// - **Idempotency.** A key the store already holds for the channel (published on any node within
///   `IdempotencyWindow/duration`) appends nothing: `committed` gets the first message's
///   position, with ``Appended/isNew`` false.
public protocol SharedLogStore: Sendable {
    /// The channel's log as the store has it: its epoch, its last offset and its newest
    /// messages (at most `retention.maxMessages`, none older than `retention.maxAge`), oldest
    /// first. A channel the store has never seen is created, so that its epoch is the same on
    /// every node. Blocks the caller for one read.
    func open(_ channel: ChannelName, retention: Retention) throws(StoreError) -> StoredLog

    /// This node's id in the store (a random UUID per process), which presence is kept under.
    var node: UUID { get }

    /// Who is subscribed to `channel` on other live nodes.
    func members(_ channel: ChannelName) async throws(StoreError) -> [NodeMember]

    /// Someone joined or left a channel on this node. Must not block; a failure to record it is
    /// the store's to log.
    func announce(_ event: PresenceEvent)

    /// Stores a message on `channel` and calls `committed` with the position it was given, or with
    /// the error that stopped it. Must not block, and never calls `committed` before it returns.
    /// - Throws: at once, when the store cannot take the message (closed, or too much already
    ///   waiting): `committed` is never called.
    func append(
        _ draft: Draft,
        idempotencyKey: IdempotencyKey?,
        committed: @escaping @Sendable (Result<Appended, StoreError>) -> Void
    ) throws(StoreError)

    /// Up to `limit` messages of `channel` after `position`, oldest first, or — when the store no
    /// longer has every message after it (another epoch, or past retention) — the log to start
    /// again from, as ``open(_:retention:)`` gives it.
    func read(
        _ channel: ChannelName,
        after position: StreamPosition,
        limit: Int,
        retention: Retention
    ) async throws(StoreError) -> CatchUp

    /// Starts telling `follower` when channels' logs grow. Called once, by the hub that uses the
    /// store; the store holds the follower weakly.
    func follow(_ follower: any LogFollower)

    /// Commits what is queued, calls every `committed` still owed, and stops.
    func close() async
}

/// A message before the store gives it a position.
public struct Draft: Sendable {
    /// The channel it goes to.
    public let channel: ChannelName
    /// Its id (UUID v4).
    public let id: UUID
    /// When it was published.
    public let time: Date
    /// The connection that published it, if any.
    public let publisher: UUID?
    /// What was published.
    public let payload: Payload

    /// A draft.
    public init(channel: ChannelName, id: UUID = .random(), time: Date, publisher: UUID?, payload: Payload) {
        self.channel = channel
        self.id = id
        self.time = time
        self.publisher = publisher
        self.payload = payload
    }

    /// The message it became at `position`; `id` and `time` are the draft's unless given (an
    /// idempotency key answers with the first message's).
    public func message(at position: StreamPosition, id: UUID? = nil, time: Date? = nil) -> Message {
        Message(channel: channel, position: position, id: id ?? self.id, time: time ?? self.time, publisher: publisher, payload: payload)
    }
}

/// What a ``SharedLogStore`` did with a draft.
public struct Appended: Sendable {
    /// The message at the position it was given; for a key already held, the first one's
    /// position, id and time.
    public let message: Message
    /// `false` when an idempotency key matched an earlier message and nothing was appended: then
    /// ``message`` carries the retry's payload, which may not be the first one's.
    public let isNew: Bool

    /// An outcome.
    public init(message: Message, isNew: Bool) {
        self.message = message
        self.isNew = isNew
    }
}

/// What a catch-up read found.
public enum CatchUp: Sendable {
    /// The messages after the position asked for, oldest first (none if it is the last), and
    /// whether more follow them (the read stopped at its count or byte bound).
    case messages([Message], more: Bool)
    /// Not every message after that position is there any more: the log to start again from.
    case restart(StoredLog)
}

/// A subscriber on another node, as presence lists it.
public struct NodeMember: Sendable, Hashable {
    /// The node it is connected to.
    public let node: UUID
    /// The member.
    public let member: PresenceMember

    /// A member on `node`.
    public init(node: UUID, member: PresenceMember) {
        self.node = node
        self.member = member
    }
}

/// Whoever a ``SharedLogStore`` tells about logs that grew and presence on other nodes: a ``Hub``.
public protocol LogFollower: AnyObject, Sendable {
    /// `member` joined `channel` on another node, `node`.
    func joined(_ channel: ChannelName, _ member: PresenceMember, on node: UUID)
    /// The member with id `client` left `channel` on `node`.
    func left(_ channel: ChannelName, client: UUID, on node: UUID)
    /// These nodes stopped saying they are alive: their members are gone. (A node not heard of
    /// yet is not gone: its members may be announced before its first heartbeat lands.)
    func nodesGone(_ nodes: Set<UUID>)
    /// `channel`'s log reached `position`, on some node.
    func advanced(_ channel: ChannelName, to position: StreamPosition)
    /// Notifications may have been missed: every open channel should read what it lacks.
    func resynchronize()
}
