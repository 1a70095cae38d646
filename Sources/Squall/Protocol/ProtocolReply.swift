// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore
import SquallCore

/// What the server sends a `/ws` client besides message envelopes, and the JSON bodies the HTTP
/// routes share with it. Every `/ws` reply echoes the request's `ref`, as the client wrote it,
/// so a client can match replies to requests. Written by hand (``JSONText``), keys sorted.
enum ProtocolReply {
    static func welcome(client: UUID, protocol name: String) -> ByteBuffer {
        var object = JSONText.Object()
        object.string("client", client.text)
        object.string("protocol", name)
        object.string("type", "welcome")
        return object.finish()
    }

    /// The answer to `connect` and `refresh`: who the token says the client is, and when it
    /// expires (seconds since 1970), if it does.
    static func connected(ref: RawJSON?, type: String, user: String, expires: Date?) -> ByteBuffer {
        var object = JSONText.Object()
        if let expires { object.integer("expires", Int(expires.timeIntervalSince1970.rounded(.down))) }  // trap-ok: a verified exp
        object.raw("ref", ref)
        object.string("type", type)
        object.string("user", user)
        return object.finish()
    }

    static func subscribed(ref: RawJSON?, _ subscription: Subscription) -> ByteBuffer {
        var object = JSONText.Object()
        object.string("channel", subscription.channel.rawValue)
        object.string("epoch", subscription.position.epoch)
        object.integer("offset", subscription.position.offset)
        object.bool("recovered", subscription.recovered)
        object.raw("ref", ref)
        object.string("type", "subscribed")
        return object.finish()
    }

    static func unsubscribed(ref: RawJSON?, channel: ChannelName) -> ByteBuffer {
        var object = JSONText.Object()
        object.string("channel", channel.rawValue)
        object.raw("ref", ref)
        object.string("type", "unsubscribed")
        return object.finish()
    }

    /// The acknowledgement of a publish: a `/ws` reply (with `type` and `ref`) and, without
    /// them, the body of an HTTP publish's 201.
    static func published(_ message: Message, type: String? = "published", ref: RawJSON? = nil) -> ByteBuffer {
        var object = JSONText.Object()
        object.string("channel", message.channel.rawValue)
        object.string("epoch", message.position.epoch)
        object.string("id", message.id.text)
        object.integer("offset", message.offset)
        object.raw("ref", ref)
        object.integer("time", message.unixMilliseconds)
        object.string("type", type)
        return object.finish()
    }

    /// `{"channel", "clients":[…], "next"?, "ref"?, "type"?}`: a `/ws` presence reply and,
    /// without `type` and `ref`, the body of an HTTP presence answer. `next` is there when the
    /// page is not the last: ask again with `after` set to it.
    static func presence(_ page: PresencePage, type: String? = "presence", ref: RawJSON? = nil) -> ByteBuffer {
        var object = JSONText.Object(capacity: 96 + page.members.reduce(0) { $0 + $1.jsonSize })
        object.string("channel", page.channel.rawValue)
        object.array("clients", page.members.map(\.json))
        object.string("next", page.next?.uuidString)
        object.raw("ref", ref)
        object.string("type", type)
        return object.finish()
    }

    /// A `join` or `leave` event, as `/ws` and SSE send it: `{"channel","client","type"}`.
    static func presenceChange(_ change: PresenceChange) -> (type: String, json: ByteBuffer) {
        let (type, channel, member) =
            switch change {
            case .join(let channel, let member): ("join", channel, member)
            case .leave(let channel, let member): ("leave", channel, member)
            }
        var object = JSONText.Object(capacity: 64 + member.jsonSize)
        object.string("channel", channel.rawValue)
        object.raw("client", json: member.json)
        object.string("type", type)
        return (type, object.finish())
    }

    static func pong(ref: RawJSON?) -> ByteBuffer {
        var object = JSONText.Object()
        object.raw("ref", ref)
        object.string("type", "pong")
        return object.finish()
    }

    static func failure(ref: RawJSON?, code: String, message: String) -> ByteBuffer {
        var object = JSONText.Object()
        object.string("code", code)
        object.string("message", message)
        object.raw("ref", ref)
        object.string("type", "error")
        return object.finish()
    }

    /// `{"channel", "epoch", "messages":[…], "offset", "recovered", "ref"?, "type"?}`: a `/ws`
    /// history reply and, without `type` and `ref`, the body of an HTTP poll or history
    /// answer. The messages are spliced in from their cached envelopes, not encoded again.
    static func history(_ history: History, type: String? = "history", ref: RawJSON? = nil) -> ByteBuffer {
        let envelopes = history.messages.map { $0.encoded(JSONEnvelope.self) }
        var object = JSONText.Object(capacity: 160 + envelopes.reduce(envelopes.count) { $0 + $1.readableBytes })
        object.string("channel", history.channel.rawValue)
        object.string("epoch", history.position.epoch)
        object.array("messages", envelopes)
        object.integer("offset", history.position.offset)
        object.bool("recovered", history.recovered)
        object.raw("ref", ref)
        object.string("type", type)
        return object.finish()
    }
}
