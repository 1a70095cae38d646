// SPDX-License-Identifier: Apache-2.0

@_spi(Benchmarks) import Squall
import Testing

@Suite("Hot paths measured by benchmarks/micro")
struct HotPathsTests {
    @Test("every hot path the micro-benchmarks repeat does its work, again and again", arguments: HotPaths.all.map(\.name))
    func doesItsWork(_ name: String) throws {
        let path = try #require(HotPaths.all.first { $0.name == name })
        let operation = path.prepare()
        for round in 1...3 {
            let produced = operation()
            #expect(path.expected.contains(produced), "round \(round): \(produced), expected \(path.expected)")
        }
    }

    @Test("the micro-benchmarks cover the way of a message: upgrade, append, encodings, compression, fan-out")
    func coversEveryStep() {
        #expect(
            HotPaths.all.map(\.name) == [
                "WebSocket upgrade: read a browser's request head, compute the accept value",
                "Log append (publish, no subscribers)",
                "JSON envelope encoding",
                "WebSocket frame encoding",
                "permessage-deflate, compress 4 KiB of JSON",
                "permessage-deflate, inflate 4 KiB of JSON",
                "Fan-out of one message to 1,000 subscribers",
            ])
    }
}
