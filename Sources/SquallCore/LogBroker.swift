/// Tells a node's hub when a channel's log grew on any node, so that it reads what it lacks from
/// the ``SharedLog``: PostgreSQL's `LISTEN`/`NOTIFY`.
///
/// Contracts: notifications carry positions, never payloads; a lost one costs latency, not a
/// message (the hub reads from the log, in order). When the broker may have missed some (its
/// link came back) it says so, and every open channel reads again.
public protocol LogBroker: Sendable {
    /// Starts telling `follower` when channels' logs grow. Called once, by the hub that uses the
    /// store; the broker holds the follower weakly.
    func follow(_ follower: any LogFollower)
}

/// Whoever a ``LogBroker`` tells about logs that grew: a ``Hub``.
public protocol LogFollower: AnyObject, Sendable {
    /// `channel`'s log reached `position`, on some node.
    func advanced(_ channel: ChannelName, to position: StreamPosition)
    /// Notifications may have been missed: every open channel should read what it lacks.
    func resynchronize()
}
