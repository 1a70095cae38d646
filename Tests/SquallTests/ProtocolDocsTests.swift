// SPDX-License-Identifier: Apache-2.0

import Foundation
import SquallCore
import Testing

@testable import Squall

/// docs/protocol.md lists exactly the close codes and JSON error codes the server can send —
/// the registries ``Disconnect`` and ``ErrorCode`` — with the right HTTP statuses.
@Suite struct ProtocolDocsTests {
    /// The rows of the markdown table under `heading`, as cells without their backticks.
    static func table(under heading: String) throws -> [[String]] {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/protocol.md")
        let lines = try String(contentsOf: docs, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        let start = try #require(lines.firstIndex { $0.hasPrefix("#") && $0.contains(heading) }, "no heading \(heading)")
        let rows = lines[(start + 1)...].drop { !$0.hasPrefix("|") }.prefix { $0.hasPrefix("|") }
        return rows.dropFirst(2).map { row in
            row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "`", with: "") }
        }
    }

    @Test func theDocsListEveryCloseCodeTheServerSendsAndNoOther() throws {
        let documented = Set(try Self.table(under: "WebSocket close codes").compactMap { UInt16($0[0]) })
        let sent = Set(Disconnect.registry.map(\.code))
        #expect(sent.subtracting(documented).isEmpty, "sent but not in docs/protocol.md: \(sent.subtracting(documented).sorted())")
        #expect(documented.subtracting(sent).isEmpty, "in docs/protocol.md but never sent: \(documented.subtracting(sent).sorted())")
    }

    @Test func everyCloseCodeIsInTheRangeWhoseAdviceTheDocsGive() throws {
        let advice: [String: Disconnect.Advice] = [
            "reconnect": .reconnect, "credentials": .refreshToken, "give up": .giveUp,
        ]
        let ranges = try Self.table(under: "Close code ranges").map { row -> (ClosedRange<UInt16>, Disconnect.Advice?) in
            let bounds = row[0].split(separator: "–").compactMap { UInt16($0) }
            let told = advice.first { row[1].hasPrefix($0.key) }?.value
            return (bounds[0]...bounds[1], told)
        }
        #expect(ranges.count == 4)
        for disconnect in Disconnect.registry {
            let range = try #require(ranges.first { $0.0.contains(disconnect.code) }, "\(disconnect.code) is in no documented range")
            #expect(range.1 == disconnect.advice, "\(disconnect.code): the docs say \(String(describing: range.1)), the code \(disconnect.advice)")
        }
    }

    @Test func theDocsListEveryErrorCodeTheServerSendsAndNoOther() throws {
        let http = try Self.table(under: "HTTP errors")
        let ws = try Self.table(under: "Error codes on")
        let documented = Set((http + ws).map { $0[0] })
        let sent = Set(ErrorCode.builtIn.map(\.description))
        #expect(sent.subtracting(documented).isEmpty, "sent but not in docs/protocol.md: \(sent.subtracting(documented).sorted())")
        #expect(documented.subtracting(sent).isEmpty, "in docs/protocol.md but never sent: \(documented.subtracting(sent).sorted())")
    }

    @Test func theDocumentedHTTPStatusesAreTheOnesAnswered() throws {
        for row in try Self.table(under: "HTTP errors") {
            let code = try #require(ErrorCode.builtIn.first { $0.description == row[0] }, "\(row[0]) is not a code")
            #expect(row[1] == "\(code.status.code)", "\(row[0]) is documented as \(row[1]), answered \(code.status.code)")
        }
    }
}
