// SPDX-License-Identifier: Apache-2.0

import Synchronization
import Testing

@testable import SquallCore

/// How ``ChannelOpener`` answers each request: by its read, or by its own deadline.
@Suite("Channel opener")
struct ChannelOpenerTests {
    /// Reads that each wait until the test lets them go.
    final class GatedReads: Sendable {
        private let gates = Mutex<[CheckedContinuation<Void, Never>]>([])
        private let batches = Mutex<[[ChannelName]]>([])

        func read(_ channels: [ChannelName]) async -> [ChannelName: StoredLog] {
            batches.withLock { $0.append(channels) }
            await withCheckedContinuation { continuation in gates.withLock { $0.append(continuation) } }
            return [:]
        }

        var reads: [[ChannelName]] { batches.withLock { $0 } }
        var waiting: Int { gates.withLock(\.count) }

        /// Lets the oldest waiting read answer.
        func releaseOne() {
            gates.withLock { $0.isEmpty ? nil : $0.removeFirst() }?.resume()
        }
    }

    @Test("a request that joined a read late keeps its own deadline when one before it runs out")
    func eachRequestKeepsItsOwnDeadline() async throws {
        // Before: the whole batch was failed at its first request's deadline, so a store that
        // was slow but answering turned requests made a moment ago into store_unavailable.
        let reads = GatedReads()
        let opener = ChannelOpener(limits: OpeningLimits(maxReads: 1, timeout: .seconds(6))) { channels in
            await reads.read(channels)
        }
        let answers = Mutex<[String: String]>([:])
        func open(_ name: String) throws {
            opener.open(try ChannelName(name)) { result in
                let answer = if case .success = result { "opened" } else { "failed" }
                answers.withLock { $0[name] = answer }
            }
        }
        try open("first")  // read 1, held
        try open("old")  // waits its turn: deadline in 6 s
        try await Task.sleep(for: .seconds(3))
        try open("new")  // waits too: deadline 3 s later
        await eventually("the first read is under way") { reads.waiting == 1 }
        reads.releaseOne()
        await eventually("the second read, of both waiting, is under way") { reads.waiting == 1 }
        #expect(reads.reads.map { $0.map(\.description) } == [["first"], ["old", "new"]])
        await eventually("the old request's time is up", within: 10) { answers.withLock { $0["old"] } != nil }
        #expect(answers.withLock { $0["new"] } == nil, "the newer request still waits for its read")
        reads.releaseOne()
        await eventually("the newer request answered by its read") { answers.withLock { $0["new"] } != nil }
        #expect(answers.withLock { $0 } == ["first": "opened", "old": "failed", "new": "opened"])
    }
}
