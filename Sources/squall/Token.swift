// SPDX-License-Identifier: Apache-2.0

import ArgumentParser
import Foundation
import Squall
import SquallSettings

/// `squall token`: mints a connection or subscription token with the configured secret
/// (`jwt-secret` or `jwt-secret-file`, from the same sources `squall serve` reads), for
/// development and tests. An application's backend mints its own with any JWT library.
struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Mint an HS256 token with the configured secret (development and tests).",
        discussion: """
            Takes the secret from what squall serve would read — --config FILE, --jwt-secret, \
            --jwt-secret-file or their SQUALL_* variables — and the audience and issuer it checks. \
            Example: squall token --sub alice --subscribe 'chat:*' --publish 'chat:*' --ttl 1h --config squall.yaml
            """
    )

    @Option(help: "The user id (sub); shown in presence.")
    var sub: String?

    @Option(help: "A channel pattern the token lets its holder subscribe to (chat:*, user:{sub}, news); repeatable.")
    var subscribe: [String] = []

    @Option(help: "A channel pattern the token lets its holder publish on; repeatable.")
    var publish: [String] = []

    @Option(help: "Make a subscription token for this channel (of a private namespace) instead.")
    var channel: String?

    @Option(help: "Presence info, as JSON: {\"name\":\"Alice\"}.")
    var info: String?

    @Option(help: "How long the token is valid: 30s, 5m, 1h, 7d; 0 for a token that does not expire.")
    var ttl: String = "1h"

    @Argument(parsing: .allUnrecognized, help: .hidden)
    var options: [String] = []

    func run() async throws {
        guard let ttl = ValueText.duration(ttl) else { throw ValidationError("ttl \"\(ttl)\" is not a duration (30s, 5m, 1h, 7d)") }
        let settings = try await Serve.settings(options, ProcessInfo.processInfo.environment)
        let auth = settings.configuration.auth
        guard let secret = try Self.secret(auth.keys) else {
            throw ValidationError("squall token signs with a secret: give jwt-secret or jwt-secret-file (public keys cannot sign)")
        }
        let claims = TokenMinter.Claims(
            sub: sub, expires: ttl == .zero ? nil : Date().addingTimeInterval(ttl.inSeconds), info: info, subscribe: subscribe, publish: publish,
            channel: channel, audience: auth.audience, issuer: auth.issuer)
        do {
            print(try await TokenMinter.hs256(claims, secret: secret))
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// The first secret among the configured keys: given, or read from its file.
    private static func secret(_ keys: [AuthConfiguration.Key]) throws -> String? {
        for key in keys {
            switch key {
            case .secret(let secret):
                return secret
            case .secretFile(let path):
                do {
                    return try TokenKeys.secret(fromFile: path)
                } catch {
                    throw ValidationError(error.description)
                }
            case .publicKeyFile, .jwks:
                continue
            }
        }
        return nil
    }
}
