// SPDX-License-Identifier: Apache-2.0

import Hummingbird

/// Where a client's tokens travel: `?token=` (all a browser's `EventSource` can send) or
/// `Authorization: Bearer`; a subscription token as `?subscription_token=`.
enum Credentials {
    /// The connection token of a request: the `Authorization: Bearer` header's, else `?token=`.
    static func token(query: Parameters, authorization: String?) -> String? {
        if let authorization, authorization.count > 7, authorization.prefix(7).lowercased() == "bearer " {
            return String(authorization.dropFirst(7)).trimmingCharacters(in: .whitespaces)
        }
        return query["token"].map(String.init)
    }

    /// A subscription token given as `?subscription_token=`.
    static func subscriptionToken(query: Parameters) -> String? {
        query["subscription_token"].map(String.init)
    }
}
