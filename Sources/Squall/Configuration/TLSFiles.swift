// SPDX-License-Identifier: Apache-2.0

/// The certificate and key that make the server speak TLS: every connection on the port then
/// starts with a TLS handshake, so WebSockets are `wss://` and HTTP routes `https://`.
///
/// Contracts:
/// - Both files are PEM and are read once, when the server starts; a file that is missing or
///   does not parse stops the start with an error that names it.
/// - HTTP/2 is offered by ALPN (`h2`, then `http/1.1`) when ``http2`` is true: browsers then
///   carry every HTTP request and Server-Sent Events stream to one origin on one connection,
///   with no cap of six. A WebSocket always takes an HTTP/1.1 connection of its own (clients
///   offer only `http/1.1` for it, or no ALPN at all).
public struct TLSFiles: Sendable, Equatable {
    /// Path of the PEM file with the server's certificate, followed by any intermediates.
    public var certificateChain: String
    /// Path of the PEM file with the certificate's private key.
    public var privateKey: String
    /// Whether HTTP/2 is offered to clients that support it. Default true.
    public var http2: Bool

    /// TLS with the certificate chain and key at these paths.
    public init(certificateChain: String, privateKey: String, http2: Bool = true) {
        self.certificateChain = certificateChain
        self.privateKey = privateKey
        self.http2 = http2
    }
}
