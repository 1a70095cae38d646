// SPDX-License-Identifier: Apache-2.0

import Foundation
import Hummingbird
import SquallCore

/// The channel, resume position and presence name a plain socket or SSE request asks for,
/// validated the same way before and after the upgrade.
struct ChannelTarget {
    let channel: ChannelName
    let since: StreamPosition?
    /// `{"name": …}` for presence, from `?name=`.
    let info: RawJSON?

    /// - Parameters:
    ///   - channel: the channel name from the path.
    ///   - query: `since` (`EPOCH:OFFSET`) and `name`.
    ///   - lastEventID: an SSE `Last-Event-ID` header, which wins over `since`.
    ///   - maxInfo: how long the presence info the name makes may be.
    init(channel: String?, query: Parameters, lastEventID: String? = nil, maxInfo: RawJSON.Limits) throws(APIError) {
        self.channel = try APIError.channel(channel)
        self.since = try APIError.position(lastEventID ?? query["since"].map(String.init))
        let info = query["name"].map { RawJSON.name(String($0)) }
        if let info, info.bytes.readableBytes > maxInfo.maxBytes {
            throw APIError.invalidParameter("name", "at most \(maxInfo.maxBytes - 11) bytes long")
        }
        self.info = info
    }
}
