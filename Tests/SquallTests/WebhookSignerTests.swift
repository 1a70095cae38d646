// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore
import Testing

@testable import Squall

/// The webhook signature, held to the Standard Webhooks specification's own example.
@Suite struct WebhookSignerTests {
    @Test func theSignatureIsTheSpecificationsForItsExample() throws {
        let key = try #require(WebhookConfiguration.key(fromSecret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        let headers = WebhookSigner(key: key).headers(
            id: "msg_p5jXN8AQM9LWM0D4loKWxJek", time: Date(timeIntervalSince1970: 1_614_265_330), body: ByteBuffer(string: #"{"test": 2432232314}"#))
        #expect(headers.map(\.name) == ["webhook-id", "webhook-timestamp", "webhook-signature"])
        #expect(headers[1].value == "1614265330")
        #expect(headers[2].value == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    @Test func aSecretIsWhsecAndAtLeastSixteenBytesOfBase64() {
        #expect(WebhookConfiguration.key(fromSecret: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") == nil)
        #expect(WebhookConfiguration.key(fromSecret: "whsec_not base64!") == nil)
        #expect(WebhookConfiguration.key(fromSecret: "whsec_" + Data("short".utf8).base64EncodedString()) == nil)
    }

    @Test func eventsAreFilteredByTypeAndByTheirChannelsNamespace() {
        let configuration = WebhookConfiguration(urls: ["http://127.0.0.1/"], secret: [1], events: ["published", "connected"], namespaces: ["chat"])
        #expect(configuration.sends("published", namespace: "chat"))
        #expect(!configuration.sends("published", namespace: "news"))
        #expect(configuration.sends("connected", namespace: nil), "a connection's event has no channel")
        #expect(!configuration.sends("disconnected", namespace: nil))
    }
}
