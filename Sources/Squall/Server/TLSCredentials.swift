// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOSSL
import Synchronization

/// The certificate chain and key of ``TLSFiles``, read into the context every TLS handshake
/// starts from, and read again on a reload: a renewed certificate (certbot, an ACME client)
/// serves the next connection without a restart.
///
/// Contracts: a read that fails — a file missing, half-written or not matching its key — keeps
/// the context in use and throws ``TLSFilesError`` naming the file; connections already open
/// keep the certificate they were handshaken with. The files are re-parsed only when their bytes
/// changed.
final class TLSCredentials: Sendable {
    let files: TLSFiles
    private let current: Mutex<(context: NIOSSLContext, chain: Data, key: Data)>

    /// Reads the PEM files of `files`.
    init(_ files: TLSFiles) throws(TLSFilesError) {
        self.files = files
        let (chain, key) = try Self.read(files)
        current = Mutex((try Self.context(files, chain: chain, key: key), chain, key))
    }

    /// The context a connection accepted now handshakes with.
    var context: NIOSSLContext { current.withLock { $0.context } }

    /// Reads the files again.
    /// - Returns: whether they changed, and the context with them.
    func reload() throws(TLSFilesError) -> Bool {
        let (chain, key) = try Self.read(files)
        guard current.withLock({ $0.chain != chain || $0.key != key }) else { return false }
        let context = try Self.context(files, chain: chain, key: key)
        current.withLock { $0 = (context, chain, key) }
        return true
    }

    private static func read(_ files: TLSFiles) throws(TLSFilesError) -> (chain: Data, key: Data) {
        let chain: Data
        do {
            chain = try Data(contentsOf: URL(fileURLWithPath: files.certificateChain))
        } catch {
            throw TLSFilesError(path: files.certificateChain, what: "certificate chain", underlying: error)
        }
        do {
            return (chain, try Data(contentsOf: URL(fileURLWithPath: files.privateKey)))
        } catch {
            throw TLSFilesError(path: files.privateKey, what: "private key", underlying: error)
        }
    }

    private static func context(_ files: TLSFiles, chain pem: Data, key keyPEM: Data) throws(TLSFilesError) -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(Array(pem))
        } catch {
            throw TLSFilesError(path: files.certificateChain, what: "certificate chain", underlying: error)
        }
        guard !chain.isEmpty else {
            throw TLSFilesError(path: files.certificateChain, what: "certificate chain", underlying: NIOSSLError.failedToLoadCertificate)
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: Array(keyPEM), format: .pem)
        } catch {
            throw TLSFilesError(path: files.privateKey, what: "private key", underlying: error)
        }
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        tls.applicationProtocols = files.http2 ? ["h2", "http/1.1"] : ["http/1.1"]
        do {
            return try NIOSSLContext(configuration: tls)
        } catch {
            throw TLSFilesError(path: files.privateKey, what: "key for the certificate chain", underlying: error)
        }
    }
}
