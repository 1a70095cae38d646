// SPDX-License-Identifier: Apache-2.0

import NIOPosix
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

/// Gives the memory of closed connections back to the system once many have gone: every
/// second it looks at how many are open, and when at least ``trimAfter`` fewer are open than at
/// the most since the last trim — or, after a trim, fewer than then — it calls glibc's
/// `malloc_trim`. Without it, a server that once
/// held 19,000 connections stays as large as it was then, its freed memory kept in the
/// allocator's arenas for connections that may never come back.
///
/// Contract: it only reads a count and, rarely, trims — on NIO's thread pool, never on an event
/// loop (a trim walks the free memory of the whole heap, and tasks here run on the loops).
struct MemoryTrimmer: Service {
    /// How many connections are open now.
    let openConnections: @Sendable () -> Int

    /// At least this many fewer connections than at the last high point make a trim.
    static let trimAfter = 1000

    func run() async throws {
        var highest = openConnections()
        // Where the last trim left the count: while connections keep going below it (a
        // thousand that close over more than a second), each second trims again.
        var trimmedAt = Int.min
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
            } catch {
                return
            }
            let open = openConnections()
            if highest - open >= Self.trimAfter || open < trimmedAt {
                await Self.returnFreedMemory()
                (highest, trimmedAt) = (open, open)
            } else {
                highest = max(highest, open)
            }
        }
    }

    /// Returns the pages of freed memory to the system, where the allocator can: glibc's
    /// `malloc_trim`, looked up at run time (it is not in Swift's Glibc module, and other C
    /// libraries do not have it).
    /// On NIO's thread pool, away from the event loops.
    static func returnFreedMemory() async {
        try? await NIOThreadPool.singleton.runIfActive {
            #if canImport(Glibc)
                typealias Trim = @convention(c) (Int) -> Int32
                guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return }
                _ = unsafeBitCast(symbol, to: Trim.self)(0)
            #endif
        }
    }
}
