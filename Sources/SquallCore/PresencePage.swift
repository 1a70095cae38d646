// SPDX-License-Identifier: Apache-2.0

import Foundation

/// One page of a channel's presence, ordered by id.
public struct PresencePage: Sendable {
    /// The channel.
    public let channel: ChannelName
    /// Members, ordered by id.
    public let members: [PresenceMember]
    /// When more members follow: the last id of this page, to ask for the next page after.
    public let next: UUID?
}
