import Squall
import Testing

@Suite("squall bench hot-paths")
struct HotPathBenchmarkTests {
    @Test("every hot path runs to completion and reports a cost per operation")
    func runs() {
        let results = HotPathBenchmarks.run(scale: 0.01)
        #expect(results.map(\.name) == [
            "log append (publish, no subscribers)",
            "JSON envelope encoding",
            "WebSocket frame encoding",
            "fan-out to 1,000 subscribers, per delivery",
        ])
        #expect(results.allSatisfy { $0.nanosecondsPerOperation > 0 && $0.nanosecondsPerOperation.isFinite })
    }
}
