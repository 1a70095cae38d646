// SPDX-License-Identifier: Apache-2.0

import AsyncHTTPClient
import Foundation
import JWTKit
import NIOCore
import NIOFoundationCompat

extension TokenKeys {
    /// Why the configured keys could not be loaded: the key as configured and what is wrong.
    public struct LoadError: Error, Sendable, CustomStringConvertible {
        public let key: String
        public let reason: String
        public var description: String { "\(key): \(reason)" }
    }

    /// Most bytes of a key file or JWKS document read.
    static let maxDocumentBytes = 1 << 20

    /// Reads every key `auth` names: secrets as they are, PEM files, JWKS files and URLs
    /// (fetched once here; ``TokenKeyRing`` refreshes them).
    /// - Throws: ``LoadError`` naming the first key that cannot be used.
    public static func load(_ auth: AuthConfiguration) async throws(LoadError) -> TokenKeys {
        var keys: [Key] = []
        var material = Hasher()
        for key in auth.keys {
            switch key {
            case .secret(let secret):
                material.combine(secret)
                keys += try await hmacKeys(secret)
            case .secretFile(let path):
                let secret = try secret(fromFile: path)
                material.combine(secret)
                keys += try await hmacKeys(secret)
            case .publicKeyFile(let path, let kid):
                let pem = try readText(path, as: "public key file \(path)")
                material.combine(pem)
                material.combine(kid)
                keys += try await publicKeys(pem: pem, kid: kid, source: path)
            case .jwks(let location):
                let document = try await jwksDocument(location)
                material.combine(document)
                keys += try await jwksKeys(document, source: location)
            }
        }
        return TokenKeys(keys, fingerprint: material.finalize())
    }

    /// A secret verifies HS256, and HS384 and HS512 when it is long enough for them (RFC 7518
    /// §3.2: a key at least as long as the hash).
    private static func hmacKeys(_ secret: String) async throws(LoadError) -> [Key] {
        let length = secret.utf8.count
        guard length >= 32 else {
            throw LoadError(key: "jwt-secret", reason: "a secret must be at least 32 bytes (RFC 7518 §3.2), got \(length)")
        }
        var keys: [Key] = []
        for (digest, minimum) in [(DigestAlgorithm.sha256, 32), (.sha384, 48), (.sha512, 64)] where length >= minimum {
            let collection = JWTKeyCollection()
            await collection.add(hmac: HMACKey(from: secret), digestAlgorithm: digest, kid: "k")
            keys.append(Key(kid: nil, algorithm: try await algorithm(collection, "jwt-secret")))
        }
        return keys
    }

    private static func publicKeys(pem: String, kid: String?, source: String) async throws(LoadError) -> [Key] {
        var algorithms: [any JWTAlgorithm] = []
        if let rsa = try? JWTKit.Insecure.RSA.PublicKey(pem: pem) {
            for digest in [DigestAlgorithm.sha256, .sha384, .sha512] {
                let collection = JWTKeyCollection()
                await collection.add(rsa: rsa, digestAlgorithm: digest, kid: "k")
                algorithms.append(try await algorithm(collection, source))
            }
        } else if let ec = try? ES256PublicKey(pem: pem) {
            let collection = JWTKeyCollection()
            await collection.add(ecdsa: ec, kid: "k")
            algorithms.append(try await algorithm(collection, source))
        } else if let ed = try? EdDSA.PublicKey(pem: pem) {
            let collection = JWTKeyCollection()
            await collection.add(eddsa: ed, kid: "k")
            algorithms.append(try await algorithm(collection, source))
        } else {
            throw LoadError(key: source, reason: "not a PEM public key of RSA (2048 bits or more), EC P-256 or Ed25519")
        }
        return algorithms.map { Key(kid: kid, algorithm: $0) }
    }

    /// The signature keys of a JWKS document, each read on its own: identity providers list
    /// keys Squall has no use for beside them (Keycloak's `RSA-OAEP` encryption key, `oct`
    /// keys), which are skipped rather than failing the document.
    private static func jwksKeys(_ document: Data, source: String) async throws(LoadError) -> [Key] {
        guard let object = try? JSONSerialization.jsonObject(with: document) as? [String: Any], let entries = object["keys"] as? [Any] else {
            throw LoadError(key: source, reason: "not a JWKS document (RFC 7517 §5): no \"keys\" list")
        }
        var keys: [Key] = []
        var skipped: [String] = []
        for entry in entries {
            guard let fields = entry as? [String: Any], let data = try? JSONSerialization.data(withJSONObject: fields) else { continue }
            // A key without a kid cannot be told apart from the others; tokens name JWKS keys.
            guard let kid = fields["kid"] as? String else {
                skipped.append("a key without kid")
                continue
            }
            if let use = fields["use"] as? String, use != "sig" {
                skipped.append("\(kid) (use \(use))")
                continue
            }
            guard let jwk = try? JSONDecoder().decode(JWK.self, from: data), let alg = signatureAlgorithm(jwk, curve: fields["crv"] as? String) else {
                skipped.append("\(kid) (\(fields["kty"] ?? "?") \(fields["alg"] ?? ""))")
                continue
            }
            let collection = JWTKeyCollection()
            do {
                try await collection.add(jwk: jwk)
                keys.append(Key(kid: kid, algorithm: try await collection.getKey(for: JWKIdentifier(string: kid), alg: alg)))
            } catch {
                skipped.append("\(kid) (\(error))")
            }
        }
        guard !keys.isEmpty else {
            throw LoadError(key: source, reason: "the JWKS document has no signature key Squall can use; skipped: \(skipped.joined(separator: ", "))")
        }
        return keys
    }

    /// The algorithm a JWKS key verifies: its `alg`, else its type's (by curve for EC keys).
    private static func signatureAlgorithm(_ jwk: JWK, curve: String?) -> String? {
        if let alg = jwk.algorithm?.rawValue { return alg }
        switch jwk.keyType {
        case .rsa: return "RS256"
        case .ecdsa: return ["P-256": "ES256", "P-384": "ES384", "P-521": "ES512"][curve ?? "P-256"]
        case .octetKeyPair: return "EdDSA"
        default: return nil
        }
    }

    private static func algorithm(_ collection: JWTKeyCollection, _ source: String) async throws(LoadError) -> any JWTAlgorithm {
        do {
            return try await collection.getKey(for: "k")
        } catch {
            throw LoadError(key: source, reason: "\(error)")
        }
    }

    /// The JWKS document at `location`: an `http(s)://` URL, fetched within 10 s, or a file.
    static func jwksDocument(_ location: String) async throws(LoadError) -> Data {
        guard location.hasPrefix("https://") || location.hasPrefix("http://") else {
            return Data(try readText(location, as: "JWKS file \(location)").utf8)
        }
        do {
            var request = HTTPClientRequest(url: location)
            request.headers.add(name: "Accept", value: "application/json")
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            guard response.status == .ok else { throw LoadError(key: location, reason: "answered \(response.status.code)") }
            let body = try await response.body.collect(upTo: maxDocumentBytes)
            return Data(buffer: body)
        } catch let error as LoadError {
            throw error
        } catch {
            throw LoadError(key: location, reason: "cannot be fetched: \(error)")
        }
    }

    /// The secret a `jwt-secret-file` holds: its text without the line ends after it (as
    /// `echo` and editors leave them).
    public static func secret(fromFile path: String) throws(LoadError) -> String {
        var scalars = try readText(path, as: "jwt-secret-file \(path)").unicodeScalars[...]
        while let last = scalars.last, last == "\n" || last == "\r" { scalars.removeLast() }
        return String(String.UnicodeScalarView(scalars))
    }

    private static func readText(_ path: String, as what: String) throws(LoadError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw LoadError(key: what, reason: "cannot be read") }
        guard data.count <= maxDocumentBytes, let text = String(data: data, encoding: .utf8) else {
            throw LoadError(key: what, reason: "is not UTF-8 text of at most 1 MiB")
        }
        return text
    }
}
