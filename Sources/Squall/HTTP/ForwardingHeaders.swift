// SPDX-License-Identifier: Apache-2.0

import NIOCore
import NIOHTTP1

/// The forwarding header of a raw request head, read before NIO parses it: a trusted proxy's
/// connection is counted against the client it forwards for as soon as its first head is in
/// (``ClientAddresses/client(peer:forwarding:)`` judges it).
enum ForwardingHeaders {
    /// The value of the header `name` (lowercase), its lines joined with `, ` as HTTP folds
    /// repeated fields; `nil` when the head does not have it.
    static func value(of name: String, in head: ByteBuffer) -> String? {
        var values: [Substring] = []
        let text = String(decoding: head.readableBytesView, as: UTF8.self)
        for line in text.split(separator: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":"), line[..<colon].lowercased() == name else { continue }
            values.append(line[line.index(after: colon)...].drop { $0 == " " || $0 == "\t" })
        }
        return values.isEmpty ? nil : values.joined(separator: ", ")
    }
}

extension HTTPHeaders {
    /// Every line of the header `addresses` believes a trusted proxy writes, joined with `, `;
    /// `nil` when there is none.
    func forwarding(_ addresses: ClientAddresses) -> String? {
        let values = self[addresses.forwardingHeader.rawValue]
        return values.isEmpty ? nil : values.joined(separator: ", ")
    }
}
