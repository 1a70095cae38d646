// SPDX-License-Identifier: Apache-2.0

import NIOCore
import NIOHTTPTypes

/// An HTTP/2 stream's ``ClientDeparture``, as ``HTTPConnectionGuard`` keeps one for an HTTP/1.1
/// connection: the routes find it by the stream's socket.
///
/// Contracts: the departure happens when the stream closes before its response ends — the
/// client reset it or the connection went — never when the client ends its request body,
/// which every HTTP/2 request does.
final class HTTP2StreamDeparture: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    private let departures: ClientDepartures
    private let departure = ClientDeparture()

    init(departures: ClientDepartures) {
        self.departures = departures
    }

    func handlerAdded(context: ChannelHandlerContext) {
        departures.register(departure, for: context.channel)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        departures.remove(context.channel)
    }

    func channelInactive(context: ChannelHandlerContext) {
        departure.depart()
        departures.remove(context.channel)
        context.fireChannelInactive()
    }
}
