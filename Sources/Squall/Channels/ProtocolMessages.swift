import Foundation
import NIOCore
import SquallCore

/// A request a `/ws` client sends: one JSON object per text frame. Which fields matter
/// depends on `op`; docs/protocol.md lists them.
struct ProtocolRequest: Decodable {
    struct Position: Decodable {
        let epoch: String
        let offset: UInt64
    }

    let op: String?
    let ref: JSONValue?
    let channel: String?
    let since: Position?
    let data: String?
    let encoding: String?
    let presence: Bool?
    let info: JSONValue?
    let limit: Int?
}

/// What the server sends a `/ws` client besides message envelopes. Every reply echoes the
/// request's `ref`, so a client can match replies to requests.
enum ProtocolReply {
    struct Welcome: Encodable {
        var type = "welcome"
        let client: UUID
        let `protocol`: String
    }

    struct Subscribed: Encodable {
        var type = "subscribed"
        let ref: JSONValue?
        let channel: String
        let epoch: String
        let offset: UInt64
        let recovered: Bool?
    }

    struct Unsubscribed: Encodable {
        var type = "unsubscribed"
        let ref: JSONValue?
        let channel: String
    }

    /// The acknowledgement of a publish: a `/ws` reply (with `type` and `ref`) and, without
    /// them, the body of an HTTP publish's 201.
    struct Published: Encodable {
        let type: String?
        let ref: JSONValue?
        let channel: String
        let id: UUID
        let epoch: String
        let offset: UInt64
        let time: Int64

        init(_ message: Message, type: String? = "published", ref: JSONValue? = nil) {
            self.type = type
            self.ref = ref
            self.channel = message.channel.rawValue
            self.id = message.id
            self.epoch = message.position.epoch
            self.offset = message.offset
            self.time = message.unixMilliseconds
        }
    }

    struct Presence: Encodable {
        var type = "presence"
        let ref: JSONValue?
        let channel: String
        let clients: [PresenceMember]
    }

    /// A `join` or `leave` event, as `/ws` and SSE send it.
    struct PresenceChange: Encodable {
        let type: String
        let channel: String
        let client: PresenceMember

        init(_ event: PresenceEvent) {
            switch event {
            case .join(let channel, let member): (type, self.channel, client) = ("join", channel.rawValue, member)
            case .leave(let channel, let member): (type, self.channel, client) = ("leave", channel.rawValue, member)
            }
        }
    }

    struct Pong: Encodable {
        var type = "pong"
        let ref: JSONValue?
    }

    struct Failure: Encodable {
        var type = "error"
        let ref: JSONValue?
        let code: String
        let message: String
    }

    /// `{"type":"history", "ref":…, "channel", "epoch", "offset", "recovered", "messages":[…]}`:
    /// a `/ws` history reply and, without `type` and `ref`, the body of an HTTP poll or history
    /// answer. The messages are spliced in from their cached envelopes, not encoded again.
    static func history(_ history: History, type: String? = "history", ref: JSONValue? = nil) -> ByteBuffer {
        struct Head: Encodable {
            let type: String?
            let ref: JSONValue?
            let channel: String
            let epoch: String
            let offset: UInt64
            let recovered: Bool
        }
        let head = JSONWire.encode(
            Head(
                type: type,
                ref: ref,
                channel: history.channel.rawValue,
                epoch: history.position.epoch,
                offset: history.position.offset,
                recovered: history.recovered
            )
        )
        return spliceMessages(into: head, history.messages)
    }

    /// Appends `,"messages":[envelope,…]}` to a JSON object (replacing its closing brace).
    private static func spliceMessages(into object: ByteBuffer, _ messages: [Message]) -> ByteBuffer {
        var buffer = object
        buffer.moveWriterIndex(to: buffer.writerIndex - 1)
        buffer.writeString(#","messages":["#)
        for (index, message) in messages.enumerated() {
            if index > 0 { buffer.writeString(",") }
            buffer.writeImmutableBuffer(message.encoded(JSONEnvelope.self))
        }
        buffer.writeString("]}")
        return buffer
    }
}

/// A `/ws` request that cannot be served: answered with an `error` reply carrying `code`, and
/// the socket stays open.
struct ProtocolError: Error {
    let code: String
    let message: String

    static func missingField(_ field: String, for op: String) -> ProtocolError {
        ProtocolError(code: "missing_field", message: "\(op) needs \"\(field)\"")
    }

    init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    /// The same code and message as the HTTP API uses.
    init(_ error: APIError) {
        self.init(code: error.code, message: error.message)
    }
}
