// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOCore
import SquallCore

/// A message as JSON, the one envelope every transport but the plain sockets uses:
///
/// ```json
/// {"channel":"room","data":"hi","epoch":"k3x9q2ab","id":"…","offset":41,"publisher":"…","time":1764188000123,"type":"message"}
/// ```
///
/// Binary payloads travel base64-encoded, marked `"encoding":"base64"`. `time` is Unix time in
/// milliseconds; `publisher` is absent for messages published over HTTP.
///
/// Written by hand rather than with `JSONEncoder`: the envelope is made once per message for every
/// /ws and SSE subscriber, and the encoder (boxed values, keys sorted at run time) took several
/// times the time and allocations (docs/benchmarks.md, "Figures behind design choices"). The
/// output is byte for byte what the encoder wrote
/// (a test holds it to that): keys sorted, no whitespace, `/` unescaped, absent optionals left
/// out, control characters as `\u00xx`.
enum JSONEnvelope: WireFormat {
    static func encode(_ message: Message) -> ByteBuffer {
        let payload = message.payload
        let isText = payload.kind == .text
        var out = ByteBuffer()
        out.reserveCapacity(payload.bytes.readableBytes + (isText ? 8 : payload.bytes.readableBytes / 3 + 40) + 220)
        out.writeStaticString(#"{"channel":"#)
        JSONText.writeString(message.channel.rawValue, into: &out)
        out.writeStaticString(#","data":"#)
        if isText {
            // Text payloads are valid UTF-8 on every way in; a repair (U+FFFD) is what the
            // encoder would have written had one not been.
            JSONText.writeString(String(buffer: payload.bytes), into: &out)
        } else {
            out.writeStaticString("\"")
            out.writeString(Data(payload.bytes.readableBytesView).base64EncodedString())
            out.writeStaticString(#"","encoding":"base64""#)
        }
        out.writeStaticString(#","epoch":"#)
        JSONText.writeString(message.position.epoch, into: &out)
        out.writeStaticString(#","id":""#)
        out.writeString(message.id.text)
        out.writeStaticString(#"","offset":"#)
        out.writeString(String(message.offset))
        if let publisher = message.publisher {
            out.writeStaticString(#","publisher":""#)
            out.writeString(publisher.text)
            out.writeStaticString("\"")
        }
        out.writeStaticString(#","time":"#)
        out.writeString(String(message.unixMilliseconds))
        out.writeStaticString(#","type":"message"}"#)
        return out
    }
}

extension Message {
    /// When the message was appended, as Unix time in milliseconds: the `time` of every JSON
    /// Squall writes.
    var unixMilliseconds: Int64 { Int64((time.timeIntervalSince1970 * 1000).rounded()) }  // trap-ok: the server's own clock
}

extension ReadBudget {
    /// A reply of at most `maxBytes` of messages as JSON envelopes: what one message costs is its
    /// envelope (encoded once and cached) and a comma.
    static func envelopes(maxBytes: Int) -> ReadBudget {
        ReadBudget(maxBytes: maxBytes) { $0.encoded(JSONEnvelope.self).readableBytes + 1 }
    }
}
