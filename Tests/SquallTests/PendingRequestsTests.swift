// SPDX-License-Identifier: Apache-2.0

import Foundation
import HTTPTypes
import SquallCore
import Synchronization
import Testing

@testable import Squall

/// A store that commits only when told, as a disk slower than the publishers would.
private final class HeldStore: LogStore {
    let held = Mutex<[@Sendable (StoreError?) -> Void]>([])
    let appended = Atomic<Int>(0)

    func restore(_ channels: [ChannelName], retention: Retention) async throws(StoreError) -> [ChannelName: StoredLog] { [:] }

    func append(_ message: Message, idempotencyKey: IdempotencyKey?, committed: @escaping @Sendable (StoreError?) -> Void) throws(StoreError) {
        appended.add(1, ordering: .relaxed)
        held.withLock { $0.append(committed) }
    }

    func trim(_ channel: ChannelName, epoch: String, through offset: UInt64) {}
    func close() async {}

    /// Commits everything held so far, in order.
    func release() {
        let waiting = held.withLock { held in
            defer { held = [] }
            return held
        }
        for committed in waiting { committed(nil) }
    }
}

@Suite("A connection's publishes waiting for their commit")
struct PendingRequestsTests {
    @Test("past the bound the connection is not read; once they commit it is, and every publish is acknowledged")
    func publishesWaitingForTheStorePushTheClientBack() async throws {
        let store = HeldStore()
        var configuration = LiveServer.configuration()
        configuration.publishRate = nil
        configuration.storage = .local(store)
        try await LiveServer.run(configuration) { server in
            let client = try await TestClient.connect(server.url("/ws"), headers: [.secWebSocketProtocol: "squall.v1"])
            _ = try await client.next(type: "welcome")
            let total = 5000
            for n in 0..<total { client.send(#"{"op":"publish","channel":"held","data":"m\#(n)"}"#) }

            // Until the bound is passed (the client may be slow to start on a busy machine), then
            // until no more is taken for 300 ms.
            for _ in 0..<100 where store.appended.load(ordering: .relaxed) <= PendingRequests.pauseAbove {
                try await Task.sleep(for: .milliseconds(100))
            }
            var taken = -1
            for _ in 0..<50 where store.appended.load(ordering: .relaxed) != taken {
                taken = store.appended.load(ordering: .relaxed)
                try await Task.sleep(for: .milliseconds(300))
            }
            // The frames of the read that crossed the bound are still taken: at most one read's worth.
            #expect(taken > PendingRequests.pauseAbove && taken < total, "\(taken) publishes taken while none was committed")

            var acknowledged = 0
            for _ in 0..<300 where acknowledged < total {
                store.release()
                while let text = try? await client.nextText(timeout: .milliseconds(100)) {
                    if text.contains(#""type":"published""#) { acknowledged += 1 }
                }
            }
            #expect(acknowledged == total)
        }
    }
}
