// SPDX-License-Identifier: Apache-2.0

import Testing

@testable import Squall

/// Which origins the policy admits, and which entries it takes as origins.
@Suite struct OriginPolicyTests {
    static let listed = try! OriginPolicy(allowing: ["https://App.Example/", "http://127.0.0.1:3000"])

    static let admitted: [(String?, String?)] = [
        (nil, "127.0.0.1:8000"),
        (nil, nil),
        ("ws://127.0.0.1", "127.0.0.1:8000"),
        ("wss://anything.example", nil),
        ("http://127.0.0.1:8000", "127.0.0.1:8000"),
        ("https://127.0.0.1:8000", "127.0.0.1:8000"),
        ("HTTP://LOCALHOST:8000", "localhost:8000"),
        ("http://[::1]:8000", "[::1]:8000"),
        ("http://example.com", "Example.com"),
        ("https://app.example", "127.0.0.1:8000"),
        ("https://APP.example", "127.0.0.1:8000"),
        ("http://127.0.0.1:3000", "127.0.0.1:8000"),
    ]

    @Test(arguments: admitted)
    func theseRequestsPass(_ origin: String?, _ host: String?) {
        #expect(Self.listed.admits(origin: origin, host: host))
    }

    static let refused: [(String?, String?)] = [
        ("http://evil.example", "127.0.0.1:8000"),
        ("http://127.0.0.1:8001", "127.0.0.1:8000"),
        ("http://127.0.0.1", "127.0.0.1:8000"),
        ("null", "127.0.0.1:8000"),
        ("chrome-extension://abcdef", "127.0.0.1:8000"),
        ("file://", "127.0.0.1:8000"),
        ("", "127.0.0.1:8000"),
        ("http://127.0.0.1:8000/path", "127.0.0.1:8000"),
        ("http://app.example", "127.0.0.1:8000"),
        ("https://app.example.evil", "127.0.0.1:8000"),
        ("http://evil.example", nil),
    ]

    @Test(arguments: refused)
    func theseRequestsAreRefused(_ origin: String?, _ host: String?) {
        #expect(!Self.listed.admits(origin: origin, host: host), "\(origin ?? "-") to \(host ?? "-")")
    }

    @Test func aListedOriginPassesWithoutAHost() {
        #expect(Self.listed.admits(origin: "http://127.0.0.1:3000", host: nil))
    }

    @Test func aStarAdmitsEveryOrigin() throws {
        let anyone = try OriginPolicy(allowing: ["*"])
        #expect(anyone.admitsAny)
        #expect(anyone.admits(origin: "http://evil.example", host: "127.0.0.1:8000"))
        #expect(anyone.admits(origin: "null", host: nil))
        #expect(!OriginPolicy().admitsAny)
    }

    static let normalized: [(String, String)] = [
        ("*", "*"),
        ("http://a.example", "http://a.example"),
        ("HTTPS://A.Example:8443/", "https://a.example:8443"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("http://my_host.internal", "http://my_host.internal"),
    ]

    @Test(arguments: normalized)
    func anOriginIsKeptInLowerCaseWithoutATrailingSlash(_ given: String, _ kept: String) throws {
        #expect(try OriginPolicy.normalized(given) == kept)
    }

    static let notOrigins = [
        "", "a.example", "http://", "https:///", "ftp://a.example", "http://a.example/path", "http://a.example//",
        "http://a example", "http://a.example?q", "http://user@a.example", "null", "**",
    ]

    @Test(arguments: notOrigins)
    func thisIsNotAnOrigin(_ given: String) {
        #expect(throws: OriginPolicy.InvalidOrigin.self) { try OriginPolicy.normalized(given) }
    }
}
