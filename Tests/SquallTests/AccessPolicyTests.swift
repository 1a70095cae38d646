// SPDX-License-Identifier: Apache-2.0

import Foundation
import SquallCore
import Testing

@testable import Squall

/// Who may subscribe, publish and read, by namespace rule and token pattern.
@Suite struct AccessPolicyTests {
    static func channel(_ name: String) -> ChannelName { try! ChannelName(name) }

    static let ada = ClientIdentity(
        user: "ada", subscribe: ["chat:*", "user:{sub}"].compactMap { ChannelPattern($0, user: "ada") },
        publish: ["chat:lobby"].compactMap { ChannelPattern($0, user: "ada") })

    static let policy = AccessPolicy(
        namespaces: [
            "chat": NamespaceOptions(subscribe: .authenticated, publish: .subscribers, history: .anyone, presenceRead: .subscribers),
            "user": NamespaceOptions(subscribe: .none),
            "locked": NamespaceOptions(subscribe: .none, publish: .none),
        ])

    static func refusal(_ decide: () throws(APIError) -> Void) -> APIError? {
        do {
            try decide()
            return nil
        } catch {
            return error
        }
    }

    @Test func aChannelTakesItsNamespacesOptionsOrTheDefaults() {
        #expect(Self.policy.namespace(of: Self.channel("chat:lobby")).name == "chat")
        #expect(Self.policy.namespace(of: Self.channel("lobby")).name == "")
        #expect(Self.policy.namespace(of: Self.channel("nowhere:lobby")).name == "", "an undefined namespace is the default's")
    }

    @Test func patternsMatchExactNamesGlobsAndTheTokensOwnUser() {
        let glob = ChannelPattern("chat:*", user: nil)
        #expect(glob?.matches(Self.channel("chat:lobby")) == true)
        #expect(glob?.matches(Self.channel("chat:")) == true)
        #expect(glob?.matches(Self.channel("chatty")) == false)
        #expect(ChannelPattern("a*b*c", user: nil)?.matches(Self.channel("a-b-b-c")) == true)
        #expect(ChannelPattern("a*b*c", user: nil)?.matches(Self.channel("a-c-b")) == false)
        let own = ChannelPattern("user:{sub}", user: "ada")
        #expect(own?.matches(Self.channel("user:ada")) == true)
        #expect(own?.matches(Self.channel("user:bob")) == false)
        #expect(ChannelPattern("user:{sub}", user: nil) == nil, "no user, no grant")
        #expect(ChannelPattern("user:{sub}", user: "*") == nil, "a user id cannot widen the pattern")
    }

    @Test func theRulesRefuseWithTheNamespaceAndRuleNamed() throws {
        let anonymous = try #require(
            Self.refusal { () throws(APIError) in try Self.policy.authorizeSubscribe(Self.channel("chat:lobby"), by: nil, subscriptionToken: nil) })
        #expect(anonymous.code == .permissionDenied)
        #expect(anonymous.message.contains("namespace chat") && anonymous.message.contains("subscribe: authenticated"))
        #expect(
            Self.refusal { () throws(APIError) in try Self.policy.authorizeSubscribe(Self.channel("chat:lobby"), by: Self.ada, subscriptionToken: nil) } == nil)
        let notSubscribed = Self.refusal { () throws(APIError) in try Self.policy.authorizePresence(Self.channel("chat:lobby"), by: Self.ada, subscribed: false)
        }
        #expect(notSubscribed?.message.contains("presence-read: subscribers") == true)
        #expect(Self.refusal { () throws(APIError) in try Self.policy.authorizePresence(Self.channel("chat:lobby"), by: Self.ada, subscribed: true) } == nil)
        #expect(Self.refusal { () throws(APIError) in try Self.policy.authorizeHistory(Self.channel("chat:lobby"), by: nil, subscribed: false) } == nil)
    }

    @Test func aTokensPatternsGrantBeyondTheRulesButNeverPastNone() {
        // publish: subscribers, but the token grants chat:lobby.
        #expect(Self.refusal { () throws(APIError) in try Self.policy.authorizePublish(Self.channel("chat:lobby"), by: Self.ada, subscribed: false) } == nil)
        #expect(Self.refusal { () throws(APIError) in try Self.policy.authorizePublish(Self.channel("chat:other"), by: Self.ada, subscribed: false) } != nil)
        // subscribe: none in `user`, yet `user:{sub}` is granted...
        #expect(
            Self.refusal { () throws(APIError) in try Self.policy.authorizeSubscribe(Self.channel("user:ada"), by: Self.ada, subscriptionToken: nil) } != nil)
        let granted = AccessPolicy(namespaces: ["user": NamespaceOptions(subscribe: .authenticated)])
        let bob = ClientIdentity(user: "bob", subscribe: [ChannelPattern("user:{sub}", user: "bob")].compactMap { $0 })
        #expect(
            Self.refusal { () throws(APIError) in try granted.authorizeSubscribe(Self.channel("user:ada"), by: bob, subscriptionToken: nil) } == nil,
            "authenticated")
        let own = AccessPolicy(namespaces: ["user": NamespaceOptions(subscribe: .subscribers)])
        #expect(Self.refusal { () throws(APIError) in try own.authorizeSubscribe(Self.channel("user:bob"), by: bob, subscriptionToken: nil) } == nil)
        #expect(Self.refusal { () throws(APIError) in try own.authorizeSubscribe(Self.channel("user:ada"), by: bob, subscriptionToken: nil) } != nil)
    }

    @Test func withoutATokenRequiredModeRefusesAndOptionalLetsIn() async throws {
        let keys = try await TokenKeys.load(AuthConfiguration(keys: [.secret(String(repeating: "k", count: 32))]))
        let optional = AccessPolicy(keys: keys)
        let anonymous = Result { () throws(APIError) in try optional.identify(nil) }
        guard case .success(nil) = anonymous else {
            Issue.record("an anonymous client was refused")
            return
        }
        let required = AccessPolicy(auth: AuthConfiguration(mode: .required), keys: keys)
        #expect(Self.refusal { () throws(APIError) in _ = try required.identify(nil) }?.code == .unauthorized)
        #expect(
            Self.refusal { () throws(APIError) in _ = try optional.identify("not.a.token") }?.code == .unauthorized, "a bad token is refused even when optional"
        )
        let keyless = Result { () throws(APIError) in try AccessPolicy().identify("not.a.token") }
        guard case .success(nil) = keyless else {
            Issue.record("without a key, a token parameter is someone else's and ignored")
            return
        }
    }

    @Test func aNamespaceIsBuiltFromADictionaryAsTypeBuildsAClass() throws {
        let chat = try NamespaceOptions(["history": 100, "presence": true, "publish": "subscribers", "history-age": "1h", "publish-rate": "10/s"])
        #expect(chat.historySize == 100)
        #expect(chat.publish == .subscribers)
        #expect(chat.historyAge == .seconds(3600))
        #expect(chat.publishRate?.perSecond == 10)
        #expect(try NamespaceOptions(["history": "subscribers"]).history == .subscribers)
        #expect(throws: NamespaceOptions.InvalidOption.self) { try NamespaceOptions(["histroy": 1]) }
        #expect(throws: NamespaceOptions.InvalidOption.self) { try NamespaceOptions(["presence": "maybe"]) }
        #expect(throws: NamespaceOptions.InvalidOption.self) { try NamespaceOptions(["history-size": 0]) }
    }

    @Test func aNamespaceHasItsOwnHooksOrTurnsTheServersOff() throws {
        let hooked = try NamespaceOptions(["hook-subscribe": "https://app.example/hooks/subscribe", "hook-publish": "off"])
        #expect(hooked.subscribeHook.url(server: "http://server/sub") == "https://app.example/hooks/subscribe")
        #expect(hooked.publishHook.url(server: "http://server/pub") == nil)
        #expect(NamespaceOptions().publishHook.url(server: "http://server/pub") == "http://server/pub")
        for url in ["ftp://x", "app.example/hook", "http://", "http://a b"] {
            #expect(throws: NamespaceOptions.InvalidOption.self, "\(url)") { try NamespaceOptions(["hook-publish": .text(url)]) }
        }
    }
}
