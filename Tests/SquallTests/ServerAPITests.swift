// SPDX-License-Identifier: Apache-2.0

import Foundation
import SquallCore
import SquallServerAPI
import Testing

@testable import Squall

/// The server API's parts that need no socket: keys, the `Authorization` header, the checks a
/// command passes before it runs, and the registry of users' sessions.
@Suite struct ServerAPITests {
    typealias Schemas = Components.Schemas

    @Test func aKeyIsAdmittedOnlyWhenItIsOneOfTheKeysExactly() {
        let keys = APIKeys(["first-key", "second", ""])
        #expect(keys.admits("first-key") && keys.admits("second"))
        for candidate in ["", "first", "first-key ", "First-key", "second2", "seconD"] {
            #expect(!keys.admits(candidate[...]), "\(candidate)")
        }
        #expect(APIKeys([""]).isEmpty, "an empty key is no key")
        #expect(!"\(keys)".contains("first-key"), "never printed")
    }

    @Test func theKeyComesFromApikeyOrBearerInAnyCase() {
        #expect(APIGate.key("apikey abc") == "abc")
        #expect(APIGate.key("Bearer  abc") == "abc")
        #expect(APIGate.key("APIKEY abc") == "abc")
        for header in [nil, "", "abc", "Basic abc", "apikey", "apikey ", "Token abc"] {
            #expect(APIGate.key(header) == nil, "\(header ?? "nil")")
        }
    }

    static let limits = ServerCommand.Limits(
        maxMessageSize: 8,
        policy: LivePolicy(
            LivePolicy.Snapshot(
                origins: OriginPolicy(), publishRate: nil, subscribeRate: nil,
                access: AccessPolicy(namespaces: ["small": NamespaceOptions(maxMessageSize: 2)]), apiKeys: APIKeys())))

    static func refusal(_ check: () throws(APIError) -> ServerCommand) -> String? {
        do {
            _ = try check()
            return nil
        } catch {
            return error.code.description
        }
    }

    @Test func aPublishIsCheckedForItsChannelDataKeyAndSizeBeforeItRuns() throws {
        func publish(_ channel: String, _ data: String, encoding: Schemas.Encoding? = nil, key: String? = nil) -> String? {
            Self.refusal { () throws(APIError) in
                .publish(try ServerCommand.publication(.init(channel: channel, data: data, encoding: encoding, idempotencyKey: key), Self.limits))
            }
        }
        #expect(publish("room", "hi") == nil)
        #expect(publish("room", "AAEC", encoding: .base64) == nil)
        #expect(publish("bad name", "hi") == "invalid_channel")
        #expect(publish("room", "***", encoding: .base64) == "invalid_request")
        #expect(publish("room", "hi", encoding: ._empty_) == "invalid_request")
        #expect(publish("room", "hi", key: "") == "invalid_parameter")
        #expect(publish("room", "123456789") == "message_too_large", "over max-message-size")
        #expect(publish("small:x", "abc") == "message_too_large", "over the namespace's own size")
    }

    @Test func aDisconnectHasACodeFrom4000To4999AndAShortPrintableReason() {
        func disconnect(_ code: Int?, _ reason: String?) -> Disconnect? {
            try? ServerCommand.disconnect(.init(user: "alice", code: code, reason: reason)).disconnect
        }
        #expect(disconnect(nil, nil) == .disconnectedByServer)
        #expect(disconnect(4999, nil) == Disconnect(code: 4999, reason: ""))
        for (code, reason) in [(3999, nil), (5000, nil), (4000, String(repeating: "x", count: 101)), (4000, "tab\there"), (4000, "café")] as [(Int?, String?)] {
            #expect(disconnect(code, reason) == nil, "\(String(describing: code)) \(String(describing: reason))")
        }
    }

    @Test func aBroadcastNamesEachChannelOnceAndAtMostAThousand() {
        func broadcast(_ channels: [String]) -> String? {
            Self.refusal { () throws(APIError) in .broadcast(try ServerCommand.broadcast(.init(channels: channels, data: "x"), Self.limits)) }
        }
        #expect(broadcast(["a", "b"]) == nil)
        #expect(broadcast([]) == "invalid_parameter")
        #expect(broadcast(["a", "a"]) == "invalid_parameter")
        #expect(broadcast((0...1000).map { "c\($0)" }) == "invalid_parameter")
    }

    @Test func theRegistryHoldsOnlyLiveSessionsAndActsOnTheUsersOnly() throws {
        let users = ConnectedUsers()
        let room = try ChannelName("room")
        let (alice, alsoAlice, bob) = (Session(on: room), Session(on: try ChannelName("other")), Session(on: room))
        users.add(alice, user: "alice")
        users.add(alsoAlice, user: "alice")
        users.add(bob, user: "bob")
        #expect(users.unsubscribe(user: "alice", from: room) == 1)
        #expect(users.disconnect(user: "alice", with: .disconnectedByServer) == 2)
        #expect(alice.ended == [.unsubscribedByServer, .disconnectedByServer] && bob.ended.isEmpty)
        users.remove(alice, user: "alice")
        users.remove(alsoAlice, user: "alice")
        #expect(users.count == 1, "a user with no session left is forgotten")
        users.received(.disconnect(user: "bob", Disconnect(code: 4600, reason: "from another node")))
        #expect(bob.ended == [Disconnect(code: 4600, reason: "from another node")])
    }

    final class Session: UserSession, @unchecked Sendable {
        let channel: ChannelName
        var ended: [Disconnect] = []

        init(on channel: ChannelName) { self.channel = channel }

        func disconnect(_ disconnect: Disconnect) { ended.append(disconnect) }

        func unsubscribe(from channel: ChannelName) -> Bool {
            guard channel == self.channel else { return false }
            ended.append(.unsubscribedByServer)
            return true
        }
    }
}
