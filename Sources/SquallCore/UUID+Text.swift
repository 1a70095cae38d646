// SPDX-License-Identifier: Apache-2.0

import Foundation

extension UUID {
    /// The same text as `uuidString` (`8-4-4-4-12` upper-case hex digits), made by hand.
    ///
    /// Foundation on Linux formats `uuidString` with `sprintf`, which a `perf` profile of a
    /// publish over `/ws` showed at 3–4 % of the server's CPU: an id is written for every
    /// message's envelope, every acknowledgement and every stored row.
    public var text: String {
        String(unsafeUninitializedCapacity: 36) { out in
            withUnsafeBytes(of: uuid) { bytes in
                var index = 0
                for (position, byte) in bytes.enumerated() {
                    if position == 4 || position == 6 || position == 8 || position == 10 {
                        out[index] = UInt8(ascii: "-")
                        index += 1
                    }
                    out[index] = Self.hexDigits[Int(byte >> 4)]
                    out[index + 1] = Self.hexDigits[Int(byte & 0x0F)]
                    index += 2
                }
            }
            return 36
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789ABCDEF".utf8)
}
