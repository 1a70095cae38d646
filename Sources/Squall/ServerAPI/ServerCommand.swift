// SPDX-License-Identifier: Apache-2.0

import Foundation
import SquallCore
import SquallServerAPI

/// One server API command, checked: every field within the limits docs/openapi.yaml states,
/// names and keys parsed. Made before anything runs, so that a request — or any command of a
/// batch — that breaks the spec is refused whole with 400 and changes nothing.
enum ServerCommand: Sendable {
    typealias Schemas = Components.Schemas

    /// A message for one channel.
    struct Publication: Sendable {
        let channel: ChannelName
        let payload: Payload
        let key: IdempotencyKey?
    }

    case publish(Publication)
    case broadcast([Publication])
    case disconnect(user: String, Disconnect)
    case unsubscribe(user: String, channel: ChannelName)
    case presence(ChannelName, after: UUID?)
    case presenceStats(ChannelName)
    case history(ChannelName, since: StreamPosition?, limit: Int)
    case historyRemove(ChannelName)
    case channels(ChannelPattern?)
    case info

    /// Most channels one broadcast names.
    static let maxBroadcastChannels = 1000

    /// A batch's command, checked as its own route checks it.
    init(_ command: Schemas.BatchCommand, limits: Limits) throws(APIError) {
        switch command {
        case .publish(let command): self = .publish(try Self.publication(command.params, limits))
        case .broadcast(let command): self = .broadcast(try Self.broadcast(command.params, limits))
        case .disconnect(let command):
            let (user, disconnect) = try Self.disconnect(command.params)
            self = .disconnect(user: user, disconnect)
        case .unsubscribe(let command):
            let (user, channel) = try Self.unsubscribe(command.params)
            self = .unsubscribe(user: user, channel: channel)
        case .presence(let command):
            let (channel, after) = try Self.presence(command.params)
            self = .presence(channel, after: after)
        case .presenceStats(let command): self = .presenceStats(try Self.channel(command.params.channel))
        case .history(let command):
            let (channel, since, limit) = try Self.history(command.params)
            self = .history(channel, since: since, limit: limit)
        case .historyRemove(let command): self = .historyRemove(try Self.channel(command.params.channel))
        case .channels(let command): self = .channels(try Self.channels(command.params))
        case .info: self = .info
        }
    }

    /// What a message may weigh: the server's `max-message-size` and its namespace's.
    struct Limits: Sendable {
        let maxMessageSize: Int
        let policy: LivePolicy

        func maxSize(of channel: ChannelName) -> Int {
            min(maxMessageSize, policy.current.access.namespace(of: channel).options.maxMessageSize ?? .max)
        }
    }

    static func publication(_ request: Schemas.PublishRequest, _ limits: Limits) throws(APIError) -> Publication {
        let channel = try channel(request.channel)
        return Publication(
            channel: channel, payload: try payload(request.data, request.encoding, limit: limits.maxSize(of: channel)), key: try key(request.idempotencyKey))
    }

    static func broadcast(_ request: Schemas.BroadcastRequest, _ limits: Limits) throws(APIError) -> [Publication] {
        guard (1...maxBroadcastChannels).contains(request.channels.count) else {
            throw APIError.invalidParameter("channels", "1 to \(maxBroadcastChannels) channel names")
        }
        guard Set(request.channels).count == request.channels.count else { throw APIError.invalidParameter("channels", "each channel once") }
        let key = try key(request.idempotencyKey)
        // One payload, its bytes shared by every channel's message.
        let payload = try payload(request.data, request.encoding, limit: limits.maxMessageSize)
        var publications: [Publication] = []
        publications.reserveCapacity(request.channels.count)
        for name in request.channels {
            let channel = try channel(name)
            let limit = limits.maxSize(of: channel)
            guard payload.bytes.readableBytes <= limit else { throw APIError.messageTooLarge(limit: limit) }
            publications.append(Publication(channel: channel, payload: payload, key: key))
        }
        return publications
    }

    static func disconnect(_ request: Schemas.DisconnectRequest) throws(APIError) -> (user: String, disconnect: Disconnect) {
        let code = request.code ?? Int(Disconnect.disconnectedByServer.code)
        guard (4000...4999).contains(code) else { throw APIError.invalidParameter("code", "an integer from 4000 to 4999") }
        let reason = request.reason ?? (request.code == nil ? Disconnect.disconnectedByServer.reason : "")
        guard reason.utf8.count <= 100, reason.utf8.allSatisfy({ (0x20...0x7E).contains($0) }) else {
            throw APIError.invalidParameter("reason", "at most 100 printable ASCII characters")
        }
        return (try user(request.user), Disconnect(code: UInt16(code), reason: reason))
    }

    static func unsubscribe(_ request: Schemas.UnsubscribeRequest) throws(APIError) -> (user: String, channel: ChannelName) {
        (try user(request.user), try channel(request.channel))
    }

    static func presence(_ request: Schemas.PresenceRequest) throws(APIError) -> (channel: ChannelName, after: UUID?) {
        let after = try request.after.map { text throws(APIError) in
            guard let id = UUID(uuidString: text) else { throw APIError.invalidParameter("after", "a client id from an earlier page") }
            return id
        }
        return (try channel(request.channel), after)
    }

    static func history(_ request: Schemas.HistoryRequest) throws(APIError) -> (channel: ChannelName, since: StreamPosition?, limit: Int) {
        let limit = request.limit ?? 100
        guard (1...1000).contains(limit) else { throw APIError.invalidParameter("limit", "an integer from 1 to 1000") }
        let since = try request.since.map { text throws(APIError) in
            guard let position = StreamPosition(text) else { throw APIError.invalidPosition(text) }
            return position
        }
        return (try channel(request.channel), since, limit)
    }

    static func channels(_ request: Schemas.ChannelsRequest) throws(APIError) -> ChannelPattern? {
        let pattern = try request.pattern.map { text throws(APIError) in
            // A name in which `*` may stand anywhere.
            guard (try? ChannelName(text.replacingOccurrences(of: "*", with: "a"))) != nil, let pattern = ChannelPattern(text, user: nil) else {
                throw APIError.invalidParameter("pattern", "a channel name in which * stands for any run of characters")
            }
            return pattern
        }
        return pattern
    }

    static func channel(_ name: String) throws(APIError) -> ChannelName {
        do {
            return try ChannelName(name)
        } catch {
            throw APIError.invalidChannel(error)
        }
    }

    private static func user(_ user: String) throws(APIError) -> String {
        guard !user.isEmpty, user.utf8.count <= 256 else { throw APIError.invalidParameter("user", "1 to 256 bytes") }
        return user
    }

    private static func key(_ text: String?) throws(APIError) -> IdempotencyKey? {
        try text.map { text throws(APIError) in
            guard let key = try? IdempotencyKey(text) else { throw APIError.invalidParameter("idempotency_key", IdempotencyKey.requirement) }
            return key
        }
    }

    /// The message `data` stands for, at most `limit` bytes.
    private static func payload(_ data: String, _ encoding: Schemas.Encoding?, limit: Int) throws(APIError) -> Payload {
        let payload: Payload
        switch encoding {
        case nil:
            payload = .text(data)
        case .base64:
            guard let bytes = Data(base64Encoded: data) else { throw APIError(.invalidRequest, message: "data is not valid base64") }
            payload = .binary(bytes)
        case ._empty_:
            // The generator's stand-in for the spec's `null`, which decodes as absent; "" is no encoding.
            throw APIError(.invalidRequest, message: "encoding must be \"base64\", null or absent")
        }
        guard payload.bytes.readableBytes <= limit else { throw APIError.messageTooLarge(limit: limit) }
        return payload
    }
}
