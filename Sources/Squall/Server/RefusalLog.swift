// SPDX-License-Identifier: Apache-2.0

import Logging
import Synchronization

/// The access log of connections refused over the connection limits, at most one line a
/// second: a client that floods the server with connections must not flood its log too (every
/// line is a write to standard error, which a slow reader of the log would make wait). A line
/// says how many refusals it stands for.
final class RefusalLog: Sendable {
    private struct State {
        var last: ContinuousClock.Instant?
        var unlogged = 0
    }

    private let logger: Logger
    private let state = Mutex(State())

    init(logger: Logger) {
        self.logger = logger
    }

    /// Logs the refusal of a connection from `remote` as an access line, or counts it for the
    /// next line if one was written less than a second ago.
    func refused(status: Int, method: String, uri: String, remote: @autoclosure () -> String?, since start: ContinuousClock.Instant) {
        let now = ContinuousClock.now
        let earlier: Int? = state.withLock { state in
            if let last = state.last, now - last < .seconds(1) {
                state.unlogged += 1
                return nil
            }
            defer {
                state.last = now
                state.unlogged = 0
            }
            return state.unlogged
        }
        guard let earlier else { return }
        let more = earlier > 0 ? " (and \(earlier) more refused in the second before)" : ""
        AccessLogMiddleware.log(status: status, method: method, uri: uri + more, remote: remote(), since: start, logger: logger)
    }
}
