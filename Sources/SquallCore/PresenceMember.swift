// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore

/// One subscriber of a channel, as presence lists it.
public struct PresenceMember: Sendable, Hashable {
    /// The subscriber's connection id (UUID v4).
    public let id: UUID
    /// What the client said about itself when it subscribed (e.g. `{"name": "alice"}`), as it
    /// wrote it.
    public let info: RawJSON?
    /// How it is connected: `ws`, `msg`, `sse`.
    public let transport: String
    /// The user its connection token names (`sub`); `nil` for an anonymous client.
    public let user: String?

    /// A member.
    public init(id: UUID, info: RawJSON?, transport: String, user: String? = nil) {
        self.id = id
        self.info = info
        self.transport = transport
        self.user = user
    }

    /// `{"id":…,"info":…,"transport":…,"user":…}`, as every presence reply and event writes it
    /// (`user` only for a client with a token).
    public var json: ByteBuffer {
        var object = JSONText.Object(capacity: 96 + (info?.bytes.readableBytes ?? 0) + (user?.utf8.count ?? 0))
        object.string("id", id.uuidString)
        object.raw("info", info)
        object.string("transport", transport)
        if let user { object.string("user", user) }
        return object.finish()
    }

    /// About how many bytes ``json`` takes, for reply budgets.
    public var jsonSize: Int { 80 + transport.utf8.count + (info?.bytes.readableBytes ?? 0) + (user.map { 10 + $0.utf8.count * 6 } ?? 0) }
}
