// SPDX-License-Identifier: Apache-2.0

import Foundation
import Testing

@testable import Squall

/// ``TLSCredentials`` refuses files it cannot use with an error that names them, before the
/// server listens. (A certificate that works, and one renewed on a reload, are served in
/// Tests/e2e/test_tls.py.)
@Suite struct TLSCredentialsTests {
    static func credentials(_ files: TLSFiles) throws {
        _ = try TLSCredentials(files)
    }

    static func scratchFile(_ contents: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("squall-tls-\(UUID().uuidString).pem").path
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func aMissingCertificateFileIsNamed() {
        let files = TLSFiles(certificateChain: "/nonexistent/cert.pem", privateKey: "/nonexistent/key.pem")
        #expect {
            try Self.credentials(files)
        } throws: { error in
            (error as? TLSFilesError).map { $0.path == "/nonexistent/cert.pem" && $0.what == "certificate chain" } ?? false
        }
    }

    @Test func aCertificateFileThatIsNotPEMIsNamed() throws {
        let garbage = try Self.scratchFile("not a certificate\n")
        defer { try? FileManager.default.removeItem(atPath: garbage) }
        #expect {
            try Self.credentials(TLSFiles(certificateChain: garbage, privateKey: garbage))
        } throws: { error in
            (error as? TLSFilesError)?.path == garbage
        }
    }
}
