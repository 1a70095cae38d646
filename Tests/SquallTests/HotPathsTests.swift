@_spi(Benchmarks) import Squall
import Testing

@Suite("Hot paths measured by benchmarks/micro")
struct HotPathsTests {
    @Test("every hot path the micro-benchmarks repeat runs, again and again")
    func runs() {
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
        for path in HotPaths.all {
            let operation = path.prepare()
            for _ in 0..<3 { operation() }
        }
    }
}
