// SPDX-License-Identifier: Apache-2.0

import Foundation
import Testing

@testable import SquallSettings

/// The option tables of README.md and docs/configuration.md are the ones ``Options`` generates
/// (`scripts/generate-options` writes them); every option has one entry, one flag, one
/// variable and one file key.
@Suite struct OptionReferenceTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The text between `<!-- options:begin -->` and `<!-- options:end -->` in `file`.
    static func generatedBlock(_ file: String) throws -> String {
        let text = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
        let begin = try #require(text.range(of: "<!-- options:begin -->\n"), "\(file) has no options:begin marker")
        let end = try #require(text.range(of: "\n<!-- options:end -->"), "\(file) has no options:end marker")
        return String(text[begin.upperBound..<end.lowerBound])
    }

    @Test func theReadmeListsEveryOptionAsTheTableSaysIt() throws {
        #expect(try Self.generatedBlock("README.md") == OptionReference.readmeTable, "run scripts/generate-options")
    }

    @Test func theConfigurationDocsListEveryOptionAsTheTableSaysIt() throws {
        #expect(try Self.generatedBlock("docs/configuration.md") == OptionReference.configurationTable, "run scripts/generate-options")
    }

    @Test func everyOptionHasOneKeyOneVariableAndOneFileKey() {
        let keys = Options.all.map(\.key)
        let variables = Options.all.compactMap(\.environment)
        let fileKeys = Options.all.compactMap(\.fileKey)
        #expect(Set(keys).count == keys.count)
        #expect(Set(variables).count == variables.count)
        #expect(Set(fileKeys).count == fileKeys.count)
        #expect(variables.allSatisfy { $0.hasPrefix("SQUALL_") })
    }

    @Test func theHelpNamesEveryFlagAndVariable() {
        for spec in Options.all {
            #expect(OptionReference.help.contains(spec.flag), "\(spec.flag)")
            if let environment = spec.environment { #expect(OptionReference.help.contains(environment), "\(environment)") }
        }
    }
}
