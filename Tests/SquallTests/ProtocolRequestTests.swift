// SPDX-License-Identifier: Apache-2.0

import NIOCore
import SquallCore
import Testing

@testable import Squall

@Suite("squall.v1 requests: decoded in one pass, ref and info kept as written")
struct ProtocolRequestTests {
    func decode(_ text: String, limits: ProtocolRequest.Limits = .init()) -> (ProtocolRequest?, ProtocolError?, RawJSON?) {
        var ref: RawJSON?
        do {
            return (try ProtocolRequest.decode(ByteBuffer(string: text), limits: limits, ref: &ref), nil, ref)
        } catch {
            return (nil, error, ref)
        }
    }

    @Test("every field is read; unknown fields and nulls are ignored")
    func fields() {
        let (request, error, _) = decode(
            #"{"op":"subscribe","channel":"r\u006fom","since":{"offset":41,"epoch":"k3"},"presence":true,"info":{"n":[1]},"limit":5,"x":[{}],"data":null,"ref":"7"}"#
        )
        #expect(error == nil)
        #expect(request?.op == "subscribe" && request?.channel == "room" && request?.presence == true && request?.limit == 5)
        #expect(request?.since?.epoch == "k3" && request?.since?.offset == 41 && request?.data == nil)
        #expect(request?.info?.description == #"{"n":[1]}"# && request?.ref?.description == #""7""#)
    }

    @Test(
        "errors have stable codes, and carry the ref once it was read",
        arguments: [
            ("not json", "invalid_json", false),
            (#"[1,2]"#, "invalid_request", false),
            (#"{"ref":1,"op":5}"#, "invalid_request", true),
            (#"{"op":"history","limit":1.5,"ref":1}"#, "invalid_request", true),
            (#"{"op":"history","limit":99999999999999999999,"ref":1}"#, "invalid_request", true),
            (#"{"op":"subscribe","since":{"epoch":"e"},"ref":1}"#, "invalid_request", true),
            (#"{"op":"subscribe","since":{"epoch":"e","offset":-1},"ref":1}"#, "invalid_request", true),
            (#"{"op":"subscribe","presence":"yes","ref":1}"#, "invalid_request", true),
            (#"{"op":"subscribe","info":[[[[[[[[[1]]]]]]]]],"ref":1}"#, "invalid_request", true),
            (#"{"op":"ping","ref":[[[[[1]]]]]}"#, "invalid_request", false),
        ])
    func errors(_ text: String, _ code: String, _ carriesRef: Bool) {
        let (_, error, ref) = decode(text)
        #expect(error?.code.description == code, "\(text)")
        #expect((ref != nil) == carriesRef, "\(text)")
    }

    @Test("ref and info over their size limits are refused")
    func sizes() {
        let limits = ProtocolRequest.Limits(ref: .init(maxBytes: 8, maxDepth: 2), info: .init(maxBytes: 16, maxDepth: 2))
        #expect(decode(#"{"op":"ping","ref":"0123456789"}"#, limits: limits).1?.code.description == "invalid_request")
        #expect(decode(#"{"op":"subscribe","info":{"name":"0123456789"}}"#, limits: limits).1?.code.description == "invalid_request")
        #expect(decode(#"{"op":"subscribe","info":{"n":"01"}}"#, limits: limits).1 == nil)
    }

    @Test("replies write the ref back byte for byte")
    func echo() {
        for ref in ["9007199254740993", "12345678901234567890", "1.50", #"{"b":2, "a":[1e2]}"#] {
            let (request, _, _) = decode(#"{"op":"ping","ref":"# + ref + "}")
            #expect(String(buffer: ProtocolReply.pong(ref: request?.ref)) == #"{"ref":"# + ref + #","type":"pong"}"#)
        }
    }
}
