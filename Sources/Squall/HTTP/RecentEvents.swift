// SPDX-License-Identifier: Apache-2.0

import Foundation
import Synchronization

/// The last few things of a kind that went wrong — refusals, webhook failures — kept for the
/// admin page: at most ``capacity``, the oldest dropped first.
public final class RecentEvents: Sendable {
    /// One thing that went wrong.
    public struct Entry: Sendable {
        public let time: Date
        /// Its code or type (`rate_limited`, `published`).
        public let kind: String
        /// What it was about, for people.
        public let detail: String
    }

    public let capacity: Int
    private let entries = Mutex<[Entry]>([])

    public init(capacity: Int = 50) {
        self.capacity = capacity
    }

    /// Keeps `kind` and `detail` (cut to 200 characters), now.
    public func add(_ kind: String, _ detail: String) {
        let entry = Entry(time: Date(), kind: kind, detail: String(detail.prefix(200)))
        entries.withLock { entries in
            entries.append(entry)
            if entries.count > capacity { entries.removeFirst(entries.count - capacity) }
        }
    }

    /// The entries, newest first.
    public var newestFirst: [Entry] { entries.withLock { $0.reversed() } }
}
