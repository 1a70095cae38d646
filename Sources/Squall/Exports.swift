// SPDX-License-Identifier: Apache-2.0

// `import Squall` is enough for everything Squall's public API names: the core's types
// (Payload, ChannelName, Hub, Disconnect, …), HTTP's field and status types, the logger, the
// socket address, and the two Hummingbird types a handler sees (its request and path
// parameters).

@_exported import HTTPTypes
@_exported import Logging
@_exported import SquallCore

@_exported import typealias Hummingbird.Parameters
@_exported import struct HummingbirdCore.FlatDictionary
@_exported import struct HummingbirdCore.Request
@_exported import struct HummingbirdCore.URI
@_exported import enum NIOCore.SocketAddress
