// SPDX-License-Identifier: Apache-2.0

import NIOCore
import SquallCore
import Synchronization

/// Collects what is written to one event loop's WebSockets and writes it once per loop turn:
/// each connection's frames go to its socket's queue in order, and each connection that got any
/// is flushed once — one `writev(2)` for all of its frames instead of one `write(2)` per frame. System calls, not encoding, bound a broadcast server, so this is where fan-out speed
/// comes from.
///
/// Contracts:
/// - **Order.** Items for one connection are written in the order they were submitted, from
///   whatever threads (one queue per loop).
/// - **Cheap submit.** `submit` takes a lock, appends, and schedules at most one drain task per
///   turn; it never writes and never waits.
/// - One coalescer per event loop, for the life of the process (``forLoop(_:)``).
final class WriteCoalescer: @unchecked Sendable {
    /// What a connection is asked to write.
    enum Item {
        /// A whole frame, possibly shared with other connections.
        case frame(ByteBuffer)
        /// The close frame; nothing is written after it.
        case close(Disconnect)
    }

    private struct Queue {
        var items: [(FrameWriter, Item)] = []
        var drainScheduled = false
        /// This turn's number, which each writer's ``FrameWriter/queuedTurn`` is compared with.
        var turn: UInt32 = 1
        /// Some connection has more than one item this turn.
        var repeats = false
    }

    let loop: any EventLoop
    private let queue = Mutex(Queue())
    // Touched only on `loop` (this is why the class is @unchecked Sendable).
    private var spare: [(FrameWriter, Item)] = []
    private var touched: [FrameWriter] = []

    private init(loop: any EventLoop) {
        self.loop = loop
    }

    /// Queues `item` for `writer`'s connection; it is written on the next turn of the loop.
    func submit(_ item: Item, for writer: FrameWriter) {
        let schedule = queue.withLock { queue in
            queue.items.append((writer, item))
            if writer.queuedTurn == queue.turn { queue.repeats = true } else { writer.queuedTurn = queue.turn }
            guard !queue.drainScheduled else { return false }
            queue.drainScheduled = true
            return true
        }
        if schedule {
            loop.execute { self.drain() }
        }
    }

    private func drain() {
        // Swap the live queue with the loop's empty spare: submitters keep appending while the
        // turn's items are written, and neither array is reallocated turn after turn.
        var items = spare
        spare = []
        let repeats = queue.withLock { queue in
            queue.drainScheduled = false
            swap(&queue.items, &items)
            defer { (queue.turn, queue.repeats) = (queue.turn &+ 1, false) }
            return queue.repeats
        }
        if repeats {
            // Several frames for some connection (a busy channel): every frame to its socket's
            // queue, then one flush per connection, one `writev(2)` for all of its frames.
            for (writer, item) in items where writer.write(item, last: false) {
                touched.append(writer)
            }
            for writer in touched { writer.flushBatch() }
            touched.removeAll(keepingCapacity: true)
        } else {
            // One frame per connection (a quiet chat): each written and flushed in one pass of
            // its pipeline, while its objects are in the cache.
            for (writer, item) in items { _ = writer.write(item, last: true) }
        }
        items.removeAll(keepingCapacity: true)
        spare = items
    }

    private static let all = Mutex<[ObjectIdentifier: WriteCoalescer]>([:])

    /// The coalescer of `loop`, made on first use.
    static func forLoop(_ loop: any EventLoop) -> WriteCoalescer {
        all.withLock { all in
            let key = ObjectIdentifier(loop)
            if let existing = all[key] { return existing }
            let coalescer = WriteCoalescer(loop: loop)
            all[key] = coalescer
            return coalescer
        }
    }
}
