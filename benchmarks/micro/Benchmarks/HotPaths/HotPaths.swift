// SPDX-License-Identifier: Apache-2.0

import Benchmark
@_spi(Benchmarks) import Squall

/// One benchmark per hot path, set up outside the measurement. Each sample repeats the
/// operation 1,000 times (`scalingFactor: .kilo`) and the figures are per operation, so that
/// the harness's own allocations and clock reads do not drown a sub-microsecond path.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 10_000
    )
    for path in HotPaths.all {
        Benchmark(path.name) { benchmark, operation in
            for _ in benchmark.scaledIterations {
                blackHole(operation())
            }
        } setup: {
            path.prepare()
        }
    }
}
