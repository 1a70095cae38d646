// SPDX-License-Identifier: Apache-2.0

import Squall
import SquallCore

extension Resolver {
    /// The server's configuration from the options, each checked, then checked together.
    mutating func configuration() throws(SettingError) -> SquallConfiguration {
        let defaults = SquallConfiguration()
        let retentionAge = try value(Options.retentionAge)
        let metaTTL = try value(Options.historyMetaTTL)
        guard metaTTL >= retentionAge else {
            throw SettingError(
                key: Options.historyMetaTTL.spec.key, value: ValueText.text(metaTTL), source: source(of: Options.historyMetaTTL.spec),
                problem: "must be at least retention-age (\(ValueText.text(retentionAge))): a position outlives its messages")
        }
        let retention = Retention(
            maxMessages: try value(Options.retentionMessages), maxAge: retentionAge, maxBytes: try value(Options.retentionBytes), metaTTL: metaTTL)
        let ping = try value(Options.pingInterval)
        let origins: OriginPolicy
        let originTexts = try value(Options.allowedOrigin)
        do {
            origins = try OriginPolicy(allowing: originTexts)
        } catch {
            throw SettingError(key: Options.allowedOrigin.spec.key, value: error.origin, source: source(of: Options.allowedOrigin.spec), problem: "\(error)")
        }
        return SquallConfiguration(
            host: try value(Options.host),
            port: try value(Options.port),
            maxMessageSize: try value(Options.maxMessageSize),
            outbox: Outbox.Limits(maxMessages: try value(Options.outboxMessages), maxBytes: try value(Options.outboxBytes)),
            deflate: try value(Options.deflateMinSize).map { DeflateOptions(minimumSize: $0) },
            pingInterval: ping == .zero ? nil : ping,
            closeTimeout: try value(Options.closeTimeout),
            retention: retention,
            longPollWait: try value(Options.longPollWait),
            sseHeartbeat: try value(Options.sseHeartbeat),
            maxReplyBytes: try value(Options.maxReplyBytes),
            handshakeTimeout: try value(Options.handshakeTimeout),
            idleTimeout: try value(Options.idleTimeout),
            bodyTimeout: try value(Options.bodyTimeout),
            writeTimeout: try value(Options.writeTimeout),
            origins: origins,
            limits: ConnectionLimits(
                maxConnections: try value(Options.maxConnections), maxPerAddress: try value(Options.maxConnectionsPerAddress),
                socketSendBuffer: try value(Options.socketSendBuffer)),
            clientAddresses: try clientAddresses(),
            publishRate: try rate(Options.publishRate, burst: Options.publishBurst),
            subscribeRate: try rate(Options.subscribeRate, burst: Options.subscribeBurst),
            tls: try tls(),
            auth: try auth(),
            apiKeys: APIKeys(try value(Options.apiKey)),
            hooks: try hooks(),
            webhooks: try webhooks(),
            serverHeader: try value(Options.serverHeader) == .on,
            defaultNamespace: defaults.defaultNamespace,
            namespaces: defaults.namespaces
        )
    }

    private mutating func rate(_ rate: ServeOption<RateLimit?>, burst: ServeOption<Int?>) throws(SettingError) -> RateLimit? {
        let limit = try value(rate)
        let burst = try value(burst)
        guard let limit else { return nil }
        return burst.map { RateLimit(perSecond: limit.perSecond, burst: $0) } ?? limit
    }

    private mutating func clientAddresses() throws(SettingError) -> ClientAddresses {
        var proxies: [AddressRange] = []
        for text in try value(Options.trustedProxy) {
            do {
                proxies.append(try AddressRange(parsing: text))
            } catch {
                throw SettingError(key: Options.trustedProxy.spec.key, value: text, source: source(of: Options.trustedProxy.spec), problem: "\(error)")
            }
        }
        return ClientAddresses(
            trustedProxies: proxies, forwardingHeader: try value(Options.forwardedHeader), ipv4Prefix: try value(Options.ipv4Prefix),
            ipv6Prefix: try value(Options.ipv6Prefix))
    }

    private mutating func tls() throws(SettingError) -> TLSFiles? {
        switch (try value(Options.tlsCert), try value(Options.tlsKey)) {
        case (nil, nil): return nil
        case (let certificate?, let key?): return TLSFiles(certificateChain: certificate, privateKey: key)
        case (let certificate, _):
            let given = certificate == nil ? Options.tlsKey.spec : Options.tlsCert.spec
            throw SettingError(key: given.key, value: nil, source: source(of: given), problem: "tls-cert and tls-key go together")
        }
    }

    private mutating func webhooks() throws(SettingError) -> WebhookConfiguration? {
        let urls = try value(Options.webhook)
        let secretText = try value(Options.webhookSecret)
        guard !urls.isEmpty else { return nil }
        for url in urls where !HookConfiguration.isURL(url) {
            throw SettingError(
                key: Options.webhook.spec.key, value: url, source: source(of: Options.webhook.spec), problem: "is not an http:// or https:// URL")
        }
        guard let secretText else {
            throw SettingError(
                key: Options.webhook.spec.key, value: urls[0], source: source(of: Options.webhook.spec),
                problem: "needs webhook-secret (whsec_ and base64) to sign events with")
        }
        guard let secret = WebhookConfiguration.key(fromSecret: secretText) else {
            throw SettingError(
                key: Options.webhookSecret.spec.key, value: "<secret>", source: source(of: Options.webhookSecret.spec),
                problem: "is not whsec_ followed by at least 16 bytes in base64")
        }
        let events = try value(Options.webhookEvents)
        for event in events where !WebhookConfiguration.eventTypes.contains(event) {
            throw SettingError(
                key: Options.webhookEvents.spec.key, value: event, source: source(of: Options.webhookEvents.spec),
                problem: "is not an event type; one of \(WebhookConfiguration.eventTypes.joined(separator: ", "))")
        }
        let namespaces = try value(Options.webhookNamespaces)
        return WebhookConfiguration(
            urls: urls, secret: secret, events: events.isEmpty ? nil : Set(events),
            namespaces: namespaces.isEmpty ? nil : Set(namespaces.map { $0 == "default" ? "" : $0 }), timeout: try value(Options.webhookTimeout),
            retryFor: try value(Options.webhookRetryFor), maxBackoff: try value(Options.webhookBackoffMax), concurrency: try value(Options.webhookConcurrency))
    }

    private mutating func hooks() throws(SettingError) -> HookConfiguration {
        var urls: [HookConfiguration.Kind: String] = [:]
        let options: [(HookConfiguration.Kind, ServeOption<String?>)] = [
            (.connect, Options.hookConnect), (.refresh, Options.hookRefresh), (.subscribe, Options.hookSubscribe), (.publish, Options.hookPublish),
        ]
        for (kind, option) in options {
            guard let url = try value(option) else { continue }
            guard HookConfiguration.isURL(url) else {
                throw SettingError(key: option.spec.key, value: url, source: source(of: option.spec), problem: "is not an http:// or https:// URL")
            }
            urls[kind] = url
        }
        return HookConfiguration(
            urls: urls, timeout: try value(Options.hookTimeout), concurrency: try value(Options.hookConcurrency), headers: try value(Options.hookHeader))
    }

    private mutating func auth() throws(SettingError) -> AuthConfiguration {
        var keys: [AuthConfiguration.Key] = []
        if let secret = try value(Options.jwtSecret) {
            guard secret.utf8.count >= 32 else {
                throw SettingError(
                    key: Options.jwtSecret.spec.key, value: "<secret>", source: source(of: Options.jwtSecret.spec),
                    problem: "is \(secret.utf8.count) bytes; a secret must be at least 32 (RFC 7518 §3.2)")
            }
            keys.append(.secret(secret))
        }
        for path in try value(Options.jwtSecretFile) {
            keys.append(.secretFile(path))
        }
        for text in try value(Options.jwtPublicKey) {
            let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
            keys.append(parts.count == 2 && !parts[0].contains("/") ? .publicKeyFile(path: parts[1], kid: parts[0]) : .publicKeyFile(path: text, kid: nil))
        }
        for location in try value(Options.jwks) {
            keys.append(.jwks(location))
        }
        let mode = try value(Options.auth)
        if mode == .required, keys.isEmpty {
            throw SettingError(
                key: Options.auth.spec.key, value: "required", source: source(of: Options.auth.spec),
                problem: "needs a key to verify tokens with: jwt-secret, jwt-secret-file, jwt-public-key or jwks")
        }
        return AuthConfiguration(
            mode: mode, keys: keys, audience: try value(Options.jwtAudience), issuer: try value(Options.jwtIssuer),
            jwksRefresh: try value(Options.jwksRefresh), leeway: try value(Options.jwtLeeway))
    }

    /// The file's `default-namespace:` and `namespaces:` sections, each built from its
    /// dictionary of options (``NamespaceOptions/init(_:)``).
    mutating func namespaces() throws(SettingError) -> (NamespaceOptions, [String: NamespaceOptions]) {
        guard let file = sources.file else { return (NamespaceOptions(), [:]) }
        let defaultNamespace = file.hasDefaultNamespace ? try namespace(Options.defaultNamespaceSection, in: file) : NamespaceOptions()
        var namespaces: [String: NamespaceOptions] = [:]
        for name in file.namespaceNames {
            namespaces[name] = try namespace("\(Options.namespacesSection).\(name)", in: file)
        }
        return (defaultNamespace, namespaces)
    }

    private mutating func namespace(_ prefix: String, in file: ConfigFile) throws(SettingError) -> NamespaceOptions {
        var dictionary: [String: NamespaceValue] = [:]
        for key in NamespaceOptions.keys {
            guard let texts = try file.texts("\(prefix).\(key)"), let text = texts.last else { continue }
            dictionary[key] = .text(text)
            recordFileValue("\(prefix).\(key)", text, file.source("\(prefix).\(key)"))
        }
        do {
            return try NamespaceOptions(dictionary)
        } catch {
            let key = "\(prefix).\(error.key)"
            throw SettingError(key: key, value: error.value, source: file.source(key), problem: "is not \(error.requirement)")
        }
    }
}
