import Foundation
import Hummingbird
import NIOCore

/// The files under `Public/`, read once at start-up and served from memory.
struct StaticAssets: Sendable {
    /// The demo chat page served at `/`.
    let indexPage: ByteBuffer

    /// Reads the bundled files; a missing file is a packaging error reported at start-up.
    init() throws {
        guard let url = Bundle.module.url(forResource: "index", withExtension: "html", subdirectory: "Public") else {
            throw StaticAssetError.missing("Public/index.html")
        }
        self.indexPage = ByteBuffer(bytes: try Data(contentsOf: url))
    }

    /// A 200 response with `body` as `contentType`.
    static func response(_ body: ByteBuffer, contentType: String) -> Response {
        Response(status: .ok, headers: [.contentType: contentType], body: .init(byteBuffer: body))
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
