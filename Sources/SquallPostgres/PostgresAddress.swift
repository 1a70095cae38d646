// SPDX-License-Identifier: Apache-2.0

import Foundation
import NIOSSL
import PostgresNIO
import SquallCore

/// Where a PostgreSQL database is, as `--store` takes it:
/// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|prefer|require]`.
///
/// `sslmode` works as libpq's does, for the three modes it names: `prefer` (the default) uses
/// TLS if the server offers it, `require` refuses a server that does not, `disable` never asks.
/// `require` does not check the server's certificate against a CA (as libpq's `require`).
public struct PostgresAddress: Sendable, CustomStringConvertible {
    /// The server's host name or address.
    public let host: String
    /// Its port. Default 5432.
    public let port: Int
    /// The role to log in as.
    public let username: String
    /// Its password, if the server asks for one.
    public let password: String?
    /// The database. Default: the user name.
    public let database: String
    /// Whether to ask for TLS.
    public let sslMode: SSLMode

    /// How a connection uses TLS.
    public enum SSLMode: String, Sendable {
        /// Never.
        case disable
        /// If the server offers it.
        case prefer
        /// Always; the server must offer it.
        case require
    }

    /// Parses a `postgres://` or `postgresql://` URL.
    /// - Throws: ``StoreError`` saying what is wrong with it.
    public init(_ url: String) throws(StoreError) {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? "") else {
            throw StoreError("a PostgreSQL address is postgres://USER@HOST[:PORT]/DATABASE, not \(url)")
        }
        guard let host = components.host, !host.isEmpty else { throw StoreError("the PostgreSQL address \(url) has no host") }
        guard let user = components.user, !user.isEmpty else { throw StoreError("the PostgreSQL address \(url) has no user") }
        var mode = SSLMode.prefer
        for item in components.queryItems ?? [] {
            guard item.name == "sslmode" else { throw StoreError("unknown parameter \(item.name) in the PostgreSQL address") }
            guard let value = item.value.flatMap(SSLMode.init(rawValue:)) else {
                throw StoreError("sslmode is disable, prefer or require, not \(item.value ?? "")")
            }
            mode = value
        }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        self.host = host
        self.port = components.port ?? 5432
        self.username = user
        self.password = components.password
        self.database = path.isEmpty ? user : path
        self.sslMode = mode
    }

    /// `postgres://USER@HOST:PORT/DATABASE`, without the password.
    public var description: String { "postgres://\(username)@\(host):\(port)/\(database)" }

    /// What PostgresNIO needs to connect.
    func configuration() throws(StoreError) -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        if sslMode == .disable {
            tls = .disable
        } else {
            var settings = TLSConfiguration.makeClientConfiguration()
            settings.certificateVerification = .none
            let context: NIOSSLContext
            do {
                context = try NIOSSLContext(configuration: settings)
            } catch {
                throw StoreError("cannot set up TLS for PostgreSQL: \(error)")
            }
            tls = sslMode == .require ? .require(context) : .prefer(context)
        }
        var configuration = PostgresConnection.Configuration(
            host: host,
            port: port,
            username: username,
            password: password,
            database: database,
            tls: tls
        )
        configuration.options.connectTimeout = .seconds(2)
        return configuration
    }
}
