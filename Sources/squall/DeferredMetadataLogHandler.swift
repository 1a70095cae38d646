// SPDX-License-Identifier: Apache-2.0

import Logging

/// swift-log's `StreamLogHandler`, writing the same lines, but metadata set on a logger is kept
/// as it is and formatted only when a line is logged. `StreamLogHandler` formats all of its
/// metadata each time any of it is set, and Hummingbird sets a request id on every request's
/// logger: at info level, where a request logs nothing, that formatting was a measurable part
/// of an HTTP publish's cost.
struct DeferredMetadataLogHandler: LogHandler {
    private var stream: StreamLogHandler
    var metadata: Logger.Metadata = [:]

    init(label: String) {
        stream = StreamLogHandler.standardError(label: label)
    }

    var logLevel: Logger.Level {
        get { stream.logLevel }
        set { stream.logLevel = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { stream.metadataProvider }
        set { stream.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        // The stream handler merges its own metadata (none), the provider's and the line's, in
        // that order; this handler's goes in first, under the line's.
        var event = event
        if !metadata.isEmpty { event.metadata = metadata.merging(event.metadata ?? [:]) { _, line in line } }
        stream.log(event: event)
    }
}
