// SPDX-License-Identifier: Apache-2.0

import NIOCore
import SquallCore
import Testing

@testable import Squall

/// The connection state machine driven without sockets: one test per transition, and RFC
/// 6455's close rules.
@Suite struct WebSocketStateMachineTests {
    static let limit = 1024

    func openMachine(deflate: Bool = false) -> WebSocketStateMachine {
        var machine = WebSocketStateMachine(maxMessageSize: Self.limit, deflate: deflate)
        machine.upgraded()
        return machine
    }

    func frame(
        _ opcode: WebSocketFrameBytes.Opcode?,
        _ payload: [UInt8] = [],
        fin: Bool = true,
        rsv1: Bool = false,
        rsv2or3: Bool = false,
        masked: Bool = true
    ) -> ClientFrame {
        ClientFrame(fin: fin, rsv1: rsv1, rsv2or3: rsv2or3, opcode: opcode, masked: masked, payload: ByteBuffer(bytes: payload))
    }

    func closeFrame(code: UInt16?, reason: [UInt8] = []) -> ClientFrame {
        var body = ByteBuffer()
        if let code { body.writeInteger(code) }
        body.writeBytes(reason)
        return frame(.close, Array(body.readableBytesView))
    }

    // MARK: upgrading

    @Test func writesAreHeldUntilTheUpgradeIsWritten() {
        var machine = WebSocketStateMachine(maxMessageSize: Self.limit, deflate: false)
        #expect(machine.write() == .hold)
        machine.upgraded()
        #expect(machine.write() == .write)
    }

    @Test func aCloseAskedForDuringTheUpgradeIsSentOnce() {
        var machine = WebSocketStateMachine(maxMessageSize: Self.limit, deflate: false)
        let action46 = machine.close(.normal)
        #expect(action46 == .close(.normal))
        machine.upgraded()
        #expect(machine.write() == .discard)
        #expect(machine.sentClose == .normal)
    }

    // MARK: frame received

    @Test func aWholeTextFrameIsDelivered() {
        var machine = openMachine()
        let action57 = machine.received(frame(.text, Array("hi".utf8)))
        #expect(action57 == .deliver(.text("hi")))
    }

    @Test func aWholeBinaryFrameIsDelivered() {
        var machine = openMachine()
        let action63 = machine.received(frame(.binary, [0xFF, 0]))
        #expect(action63 == .deliver(.binary(ByteBuffer(bytes: [0xFF, 0]))))
    }

    @Test func fragmentsAreReassembledAroundControlFrames() {
        var machine = openMachine()
        let action69 = machine.received(frame(.text, Array("he".utf8), fin: false))
        #expect(action69 == .none)
        let action71 = machine.received(frame(.ping, [1]))
        #expect(action71 == .pong(ByteBuffer(bytes: [1])))
        let action73 = machine.received(frame(.continuation, Array("l".utf8), fin: false))
        #expect(action73 == .none)
        let action75 = machine.received(frame(.continuation, Array("lo".utf8)))
        #expect(action75 == .deliver(.text("hello")))
    }

    @Test func anUnmaskedFrameIs1002() {
        var machine = openMachine()
        let action81 = machine.received(frame(.text, [], masked: false))
        #expect(action81 == .close(.unmaskedFrame))
        let ended = machine.socketClosedIsFailure(.unmaskedFrame)
        #expect(ended)
    }

    @Test func reservedBitsAre1002() {
        var machine = openMachine()
        let action88 = machine.received(frame(.text, [], rsv2or3: true))
        #expect(action88 == .close(.reservedBits))
    }

    @Test func rsv1WithoutDeflateIs1002() {
        var machine = openMachine()
        let action94 = machine.received(frame(.text, [], rsv1: true))
        #expect(action94 == .close(.noExtensionNegotiated))
    }

    @Test func rsv1OnAContinuationIs1002() {
        var machine = openMachine(deflate: true)
        let action100 = machine.received(frame(.text, [], fin: false))
        #expect(action100 == .none)
        let action102 = machine.received(frame(.continuation, [], rsv1: true))
        #expect(action102 == .close(.compressedControlOrContinuation))
    }

    @Test func aNewMessageInsideAFragmentedOneIs1002() {
        var machine = openMachine()
        _ = machine.received(frame(.text, [0x61], fin: false))
        let action109 = machine.received(frame(.binary, [1]))
        #expect(action109 == .close(.expectedContinuation))
    }

    @Test func aContinuationWithoutAMessageIs1002() {
        var machine = openMachine()
        let action115 = machine.received(frame(.continuation, [1]))
        #expect(action115 == .close(.unexpectedContinuation))
    }

    @Test func anUnknownOpcodeIs1002() {
        var machine = openMachine()
        let action121 = machine.received(frame(nil))
        #expect(action121 == .close(.unknownOpcode))
    }

    @Test func invalidUTF8TextIs1007() {
        var machine = openMachine()
        let action127 = machine.received(frame(.text, [0xC3, 0x28]))
        #expect(action127 == .close(.invalidUTF8))
    }

    @Test func aMessageOverTheLimitIs1009() {
        var machine = openMachine()
        _ = machine.received(frame(.binary, [UInt8](repeating: 0, count: Self.limit), fin: false))
        let action134 = machine.received(frame(.continuation, [0]))
        #expect(action134 == .close(.messageTooBig))
    }

    @Test func aCompressedMessageIsInflated() throws {
        var machine = openMachine(deflate: true)
        let text = String(repeating: "squall ", count: 20)
        let compressed = try #require(PerMessageDeflate.compress(ByteBuffer(string: text)))
        let action142 = machine.received(frame(.text, Array(compressed.readableBytesView), rsv1: true))
        #expect(action142 == .deliver(.text(text)))
    }

    @Test func aCompressedMessageThatInflatesOneByteOverTheLimitIs1009() throws {
        var machine = openMachine(deflate: true)
        let compressed = try #require(PerMessageDeflate.compress(ByteBuffer(repeating: UInt8(ascii: "a"), count: Self.limit + 1)))
        let action = machine.received(frame(.text, Array(compressed.readableBytesView), rsv1: true))
        #expect(action == .close(.messageTooBig))
    }

    @Test func aCorruptCompressedMessageIs1007() {
        var machine = openMachine(deflate: true)
        let action148 = machine.received(frame(.binary, [0xFF, 0xFF, 0xFF], rsv1: true))
        #expect(action148 == .close(.invalidCompressedData))
    }

    @Test func aParseFailureClosesWithItsCode() {
        var machine = openMachine()
        let action154 = machine.parseFailed(.tooBig)
        #expect(action154 == .queue(.messageTooBig), "queued behind what was queued before it")
        let ended = machine.socketClosedIsFailure(.messageTooBig)
        #expect(ended)
    }

    // MARK: close received (RFC 6455 §5.5.1, §7.4)

    @Test func aClientCloseIsEchoedAndTheSocketEndsAfterIt() {
        var machine = openMachine()
        let action163 = machine.received(closeFrame(code: 4001, reason: Array("bye".utf8)))
        #expect(action163 == .answerClose(.echo(4001)))
        #expect(machine.write() == .discard)
        guard case .clientClosed = machine.socketClosed() else {
            Issue.record("not a client close")
            return
        }
    }

    @Test func anEmptyCloseIsAnswered1000() {
        var machine = openMachine()
        let action171 = machine.received(closeFrame(code: nil))
        #expect(action171 == .answerClose(.echo(1000)))
    }

    @Test func aCloseWithAOneBytePayloadIs1002() {
        var machine = openMachine()
        let action177 = machine.received(frame(.close, [0x03]))
        #expect(action177 == .answerClose(.invalidCloseFrame))
        let ended = machine.socketClosedIsFailure(.invalidCloseFrame)
        #expect(ended)
    }

    @Test(arguments: [UInt16(0), 999, 1004, 1005, 1006, 1012, 1015, 1016, 2000, 2999, 5000, 65535])
    func aCloseCodeThatMayNotBeSentIs1002(code: UInt16) {
        var machine = openMachine()
        let action185 = machine.received(closeFrame(code: code))
        #expect(action185 == .answerClose(.invalidCloseCode))
    }

    @Test(arguments: [UInt16(1000), 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999])
    func aCloseCodeThatMayBeSentIsEchoed(code: UInt16) {
        var machine = openMachine()
        let action192 = machine.received(closeFrame(code: code))
        #expect(action192 == .answerClose(.echo(code)))
    }

    @Test func aCloseReasonThatIsNotUTF8Is1007() {
        var machine = openMachine()
        let action198 = machine.received(closeFrame(code: 1000, reason: [0xCE, 0xBA, 0xE1, 0xBD]))
        #expect(action198 == .answerClose(.invalidCloseReason))
    }

    @Test func noDataFrameIsDeliveredAfterTheClientsClose() {
        var machine = openMachine()
        _ = machine.received(closeFrame(code: 1000))
        let action205 = machine.received(frame(.text, Array("late".utf8)))
        #expect(action205 == .none)
        let action207 = machine.received(closeFrame(code: 1000))
        #expect(action207 == .none)
    }

    // MARK: close sent

    @Test func theServersCloseIsSentOnceAndEndsWrites() {
        var machine = openMachine()
        let action215 = machine.close(.normal)
        #expect(action215 == .close(.normal))
        let action217 = machine.close(.shutdown)
        #expect(action217 == .none)
        #expect(machine.write() == .discard)
        guard case .serverClosed(let sent) = machine.socketClosed() else {
            Issue.record("not a server close")
            return
        }
        #expect(sent == .normal)
    }

    @Test func noDataFrameIsDeliveredAfterTheServersClose() {
        var machine = openMachine()
        _ = machine.close(.normal)
        let action227 = machine.received(frame(.text, Array("late".utf8)))
        #expect(action227 == .none)
        let action229 = machine.received(frame(.ping, [1]))
        #expect(action229 == .none)
    }

    @Test func theClientsAnswerToTheServersCloseDropsTheSocket() {
        var machine = openMachine()
        _ = machine.close(.normal)
        let action236 = machine.received(closeFrame(code: 1000))
        #expect(action236 == .drop)
    }

    @Test func shutdownIs1001() {
        var machine = openMachine()
        let action242 = machine.shutdown()
        #expect(action242 == .close(.shutdown))
    }

    @Test func aHookFailureIs1011AndItsErrorIsTheCause() {
        struct Boom: Error {}
        var machine = openMachine()
        let action249 = machine.hookFailed(Boom())
        #expect(action249 == .queue(.serverError))
        guard case .failed(let error) = machine.socketClosed() else {
            Issue.record("not a failure")
            return
        }
        #expect(error is Boom)
    }

    @Test func anOverflowingOutboxIs1008() {
        var machine = openMachine()
        let action257 = machine.outboxOverflowed()
        #expect(action257 == .close(.slowConsumer))
    }

    @Test func theCloseTimeoutDropsOnlyASocketStillOpen() {
        var machine = openMachine()
        _ = machine.close(.normal)
        #expect(machine.closeTimedOut())
        _ = machine.socketClosed()
        #expect(!machine.closeTimedOut())
    }

    // MARK: pings

    @Test func aPingIsSentWhenDueAndAnEchoedPongAnswersIt() {
        var machine = openMachine()
        let action273 = machine.pingDue(nonce: 7)
        #expect(action273 == .ping(7))
        var pong = ByteBuffer()
        pong.writeInteger(UInt64(7))
        let action277 = machine.received(frame(.pong, Array(pong.readableBytesView)))
        #expect(action277 == .none)
        let action279 = machine.pingDue(nonce: 8)
        #expect(action279 == .ping(8))
    }

    @Test func aClientThatDoesNotAnswerAPingIsDropped() {
        var machine = openMachine()
        _ = machine.pingDue(nonce: 7)
        let action286 = machine.received(frame(.pong, [1, 2, 3]))  // unsolicited: ignored
        #expect(action286 == .none)
        let action288 = machine.pingDue(nonce: 8)
        #expect(action288 == .drop)
    }

    @Test func noPingIsSentWhileClosingOrUpgrading() {
        var upgrading = WebSocketStateMachine(maxMessageSize: Self.limit, deflate: false)
        let action294 = upgrading.pingDue(nonce: 1)
        #expect(action294 == .none)
        var machine = openMachine()
        _ = machine.close(.normal)
        let action298 = machine.pingDue(nonce: 1)
        #expect(action298 == .none)
    }

    // MARK: violations after valid messages; text checked as it arrives

    @Test func aViolationLetsWhatWasQueuedBeforeItGoFirst() {
        var machine = openMachine()
        let step1 = machine.received(frame(.text, Array("hi".utf8)))
        #expect(step1 == .deliver(.text("hi")))
        let step2 = machine.received(frame(.text, [], rsv2or3: true))
        #expect(step2 == .close(.reservedBits))
        #expect(machine.write() == .write, "the echo of `hi`, queued before, still goes out")
        let step3 = machine.received(frame(.ping, [1]))
        #expect(step3 == .none, "nothing more is read")
        #expect(machine.sentClose == nil && machine.isClosing)
        let step4 = machine.close(.reservedBits)
        #expect(step4 == .close(.reservedBits), "the writer reaches the queued close")
        #expect(machine.write() == .discard)
        let step5 = machine.close(.normal)
        #expect(step5 == .none, "one close")
        let step6 = machine.socketClosedIsFailure(.reservedBits)
        #expect(step6)
    }

    @Test func aHandlersCloseAfterAViolationSendsTheViolationsCode() {
        var machine = openMachine()
        _ = machine.received(frame(nil))
        let step7 = machine.close(.normal)
        #expect(step7 == .close(.unknownOpcode))
    }

    @Test func invalidUTF8InAFragmentClosesAtThatFragment() {
        var machine = openMachine()
        let step8 = machine.received(frame(.text, Array("κόσμε".utf8), fin: false))
        #expect(step8 == .none)
        let step9 = machine.received(frame(.continuation, [0xF4, 0x90, 0x80, 0x80], fin: false))
        #expect(step9 == .close(.invalidUTF8), "U+110000, before the last fragment")
    }

    @Test func aCharacterSplitAcrossFragmentsIsFineAndAnInvalidContinuationOfItIsNot() {
        var machine = openMachine()
        let step10 = machine.received(frame(.text, [0xE2, 0x82], fin: false))
        #expect(step10 == .none)
        let step11 = machine.received(frame(.continuation, [0xAC]))
        #expect(step11 == .deliver(.text("€")))
        let step12 = machine.received(frame(.text, [0x61, 0xF4], fin: false))
        #expect(step12 == .none)
        let step13 = machine.received(frame(.continuation, [0x90], fin: false))
        #expect(step13 == .close(.invalidUTF8))
    }

    @Test func aTextEndingInTheMiddleOfACharacterIs1007() {
        var machine = openMachine()
        let step14 = machine.received(frame(.text, [0x61, 0xE2, 0x82]))
        #expect(step14 == .close(.invalidUTF8))
    }

    @Test func textIsCheckedWhileItsFrameArrives() {
        var machine = openMachine()
        func part(_ opcode: WebSocketFrameBytes.Opcode, _ bytes: [UInt8]) -> PartialFrame {
            PartialFrame(rsv1: false, opcode: opcode, newBytes: ByteBuffer(bytes: bytes))
        }
        #expect(machine.wantsPart(.text, rsv1: false) && !machine.wantsPart(.binary, rsv1: false) && !machine.wantsPart(.text, rsv1: true))
        let step15 = machine.receivedPart(part(.text, [0xCE, 0xBA, 0xE1]))
        #expect(step15 == .none)
        let step16 = machine.receivedPart(part(.text, [0xBD, 0xB9]))
        #expect(step16 == .none)
        // The whole frame arrives: only its bytes after the parts are checked again.
        let step17 = machine.received(frame(.text, [0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0x21]))
        #expect(step17 == .deliver(.text("κ\u{1F79}!")))
        let step18 = machine.receivedPart(part(.text, [0x61, 0xED, 0xA0]))
        #expect(step18 == .close(.invalidUTF8), "a surrogate, before its frame ends")
    }

    @Test func compressedTextIsCheckedOnceInflated() throws {
        var machine = openMachine(deflate: true)
        let compressed = try #require(PerMessageDeflate.compress(ByteBuffer(bytes: [0x61, 0xC3, 0x28, 0x62] + Array(repeating: 0x61, count: 64))))
        #expect(!machine.wantsPart(.text, rsv1: true))
        let step19 = machine.received(frame(.text, Array(compressed.readableBytesView), rsv1: true))
        #expect(step19 == .close(.invalidUTF8))
    }

    @Test func aSocketGoneWithoutACloseIsAClientClose() {
        var machine = openMachine()
        guard case .clientClosed = machine.socketClosed() else {
            Issue.record("not a client close")
            return
        }
        let action305 = machine.received(frame(.text, [0x61]))
        #expect(action305 == .none)
    }
}

extension WebSocketStateMachine {
    /// Ends the machine and says whether its cause is the protocol violation `disconnect`.
    fileprivate mutating func socketClosedIsFailure(_ disconnect: Disconnect) -> Bool {
        guard case .failed(let error) = socketClosed() else { return false }
        return (error as? ProtocolViolation)?.disconnect == disconnect
    }
}
