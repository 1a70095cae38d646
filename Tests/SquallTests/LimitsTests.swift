// SPDX-License-Identifier: Apache-2.0

import HummingbirdWSClient
import NIOCore
import NIOWebSocket
import Squall
import SquallCore
import Testing

@Suite("Limits: message size, UTF-8, slow clients")
struct LimitsTests {
    @Test("a message over the size limit closes that connection with 1009; others carry on")
    func oversizeMessage() async throws {
        try await LiveServer.run(LiveServer.configuration(maxMessageSize: 1024)) { server in
            let offender = try await TestClient.connect(server.url("/msg"))
            let bystander = try await TestClient.connect(server.url("/msg"))
            offender.send(String(repeating: "x", count: 2048))
            #expect(try await offender.closeFrame()?.closeCode == .messageTooLarge)

            let speaker = try await TestClient.connect(server.url("/msg"))
            try await LiveServer.eventually("the offender is gone") { server.connections.count == 2 }
            speaker.send("after the offender")
            #expect(try await bystander.nextText() == "after the offender")
        }
    }

    @Test("a fragmented message over the size limit also closes with 1009")
    func oversizeFragmentedMessage() async throws {
        try await LiveServer.run(LiveServer.configuration(maxMessageSize: 1024)) { server in
            let offender = try await TestClient.connect(server.url("/msg"))
            offender.send(fragments: Array(repeating: String(repeating: "y", count: 600), count: 3))
            #expect(try await offender.closeFrame()?.closeCode == .messageTooLarge)
        }
    }

    @Test("invalid UTF-8 in a text message closes with 1007; others carry on")
    func invalidUTF8() async throws {
        try await LiveServer.run { server in
            let offender = try await TestClient.connect(server.url("/msg"))
            let bystander = try await TestClient.connect(server.url("/msg"))
            offender.send(rawText: [0x68, 0x69, 0xC3, 0x28])
            #expect(try await offender.closeFrame()?.closeCode == .dataInconsistentWithMessage)
            try await LiveServer.eventually("the offender is gone") { server.connections.count == 1 }
            bystander.send("fine")
            #expect(try await bystander.nextText() == "fine")
        }
    }

    @Test("a client that never reads is closed; the others get every message without waiting for it")
    func slowClientIsClosed() async throws {
        // Small outbox and 64 KiB messages: the stalled client's socket buffers fill, then its
        // outbox overflows. 600 messages (~38 MiB) are far more than loopback buffers hold.
        let configuration = LiveServer.configuration(outbox: .init(maxMessages: 16, maxBytes: 1 << 20), closeTimeout: .seconds(1))
        try await LiveServer.run(configuration) { server in
            let stalled = try await TestClient.connect(server.url("/msg"), reading: false)
            let reader = try await TestClient.connect(server.url("/msg"))
            let publisher = try await TestClient.connect(server.url("/msg"))
            try await LiveServer.eventually("all three joined") { server.connections.count == 3 }

            // Lockstep: each message must reach the reader before the next is sent, so the
            // reader's outbox never holds more than one while the stalled one fills up. A
            // broadcast that waited on the stalled client would time out here.
            let count = 600
            let body = String(repeating: "z", count: 64 * 1024 - 8)
            for n in 0..<count {
                let text = String(format: "%07d ", n) + body
                publisher.send(text)
                #expect(try await reader.nextText(timeout: .seconds(5)) == text, "message \(n) arrived in order")
            }
            try await LiveServer.eventually("the stalled client was dropped") { server.connections.count == 2 }

            // Once it reads again it finds only what fit in the buffers, then the end.
            stalled.startReading()
            var received = 0
            while try await stalled.next() != nil { received += 1 }
            #expect(received < count, "the stalled client did not get the whole backlog")
            let close = try await stalled.closeFrame()
            #expect(close == nil || close?.closeCode == .policyViolation)
        }
    }
}
