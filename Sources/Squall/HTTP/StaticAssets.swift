// SPDX-License-Identifier: Apache-2.0

import Foundation
import Hummingbird
import NIOCore

/// The files under `Public/` — the demo chat page, the admin page and the browser client — read once at start-up
/// and served from memory.
struct StaticAssets: Sendable {
    /// A served file: its route, bundled name and content type.
    struct File: Sendable {
        let route: String
        let name: String
        let contentType: String
    }

    static let files = [
        File(route: "/", name: "index.html", contentType: "text/html; charset=utf-8"),
        // The admin page: its data comes from the server API and /admin/events, behind the key.
        File(route: "/admin", name: "admin.html", contentType: "text/html; charset=utf-8"),
        File(route: "/squall.js", name: "squall.js", contentType: "text/javascript; charset=utf-8"),
        File(route: "/squall.mjs", name: "squall.mjs", contentType: "text/javascript; charset=utf-8"),
    ]

    private let contents: [String: ByteBuffer]

    /// Reads the bundled files; a missing file is a packaging error reported at start-up.
    init() throws {
        var contents: [String: ByteBuffer] = [:]
        for file in Self.files {
            guard let dot = file.name.lastIndex(of: ".") else { throw StaticAssetError.missing("Public/\(file.name)") }
            let (stem, suffix) = (String(file.name[..<dot]), String(file.name[file.name.index(after: dot)...]))
            guard let bundled = Bundle.module.url(forResource: stem, withExtension: suffix, subdirectory: "Public") else {
                throw StaticAssetError.missing("Public/\(file.name)")
            }
            contents[file.route] = ByteBuffer(bytes: try Data(contentsOf: bundled))
        }
        self.contents = contents
    }

    /// Serves every file at its route.
    func add(to router: Router<SquallRequestContext>) {
        for file in Self.files {
            guard let body = contents[file.route] else { continue }  // read by init, or init threw
            router.get(RouterPath(file.route)) { _, _ in
                Response(
                    status: .ok,
                    headers: [.contentType: file.contentType, .cacheControl: "no-cache"],
                    body: .init(byteBuffer: body)
                )
            }
        }
        // Every browser asks for one; Squall has none, and says so without a 404 warning.
        router.get("/favicon.ico") { _, _ in
            Response(status: .noContent, headers: [.cacheControl: "max-age=86400"])
        }
    }
}

/// A file that should have been bundled with Squall is not there.
enum StaticAssetError: Error, CustomStringConvertible {
    case missing(String)

    var description: String {
        switch self {
        case .missing(let path): "bundled file \(path) is missing: reinstall or rebuild Squall"
        }
    }
}
