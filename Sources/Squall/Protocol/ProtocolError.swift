// SPDX-License-Identifier: Apache-2.0

import SquallCore

/// A `/ws` request that cannot be served: answered with an `error` reply carrying `code`, and
/// the socket stays open.
struct ProtocolError: Error {
    let code: ErrorCode
    let message: String

    static func missingField(_ field: String, for op: String) -> ProtocolError {
        ProtocolError(.missingField, message: "\(op) needs \"\(field)\"")
    }

    init(_ code: ErrorCode, message: String) {
        self.code = code
        self.message = message
    }

    /// The same code and message as the HTTP API uses.
    init(_ error: APIError) {
        self.init(error.code, message: error.message)
    }
}
