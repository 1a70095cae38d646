// SPDX-License-Identifier: Apache-2.0

import Foundation
import OpenAPIRuntime
import SquallCore
import SquallServerAPI

// The server API's response types made from Squall's own values, with the same fields and the
// same text as the HTTP routes and `/ws` write them.

extension Components.Schemas.Published {
    init(_ message: Message) {
        self.init(
            channel: message.channel.rawValue, epoch: message.position.epoch, id: message.id.text, offset: Int64(clamping: message.offset),
            time: message.unixMilliseconds)
    }
}

extension Components.Schemas.Message {
    init(_ message: Message) {
        let isText = message.payload.kind == .text
        self.init(
            channel: message.channel.rawValue,
            data: isText ? String(buffer: message.payload.bytes) : Data(message.payload.bytes.readableBytesView).base64EncodedString(),
            encoding: isText ? nil : .base64, epoch: message.position.epoch, id: message.id.text, offset: Int64(clamping: message.offset),
            publisher: message.publisher?.text, time: message.unixMilliseconds, _type: .message)
    }
}

extension Components.Schemas.Member {
    init(_ member: PresenceMember) {
        self.init(
            id: member.id.uuidString, transport: member.transport, user: member.user,
            info: member.info.flatMap { try? JSONDecoder().decode(OpenAPIValueContainer.self, from: Data($0.bytes.readableBytesView)) })
    }
}

extension Components.Schemas.ErrorBody {
    init(_ error: APIError) {
        self.init(code: error.code.description, message: error.message)
    }
}
