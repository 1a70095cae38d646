// SPDX-License-Identifier: Apache-2.0

import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension UUID {
    /// A random (version 4) UUID, as `UUID()` makes, from randomness drawn 4 KiB at a time.
    ///
    /// Foundation's `UUID()` on Linux opens, reads and closes `/dev/urandom` for every id:
    /// three system calls, several microseconds, which Squall would pay for every connection and
    /// every published message. This reads the same source once per 256 ids.
    public static func random() -> UUID {
        var bytes = RandomPool.shared.next16()
        bytes.6 = (bytes.6 & 0x0F) | 0x40  // version 4
        bytes.8 = (bytes.8 & 0x3F) | 0x80  // RFC 4122 variant
        return UUID(uuid: bytes)
    }
}

/// Bytes from the system's random source, refilled in bulk; handed out 16 at a time, each
/// only once.
private final class RandomPool: Sendable {
    static let shared = RandomPool()

    private struct State {
        var bytes = [UInt8](repeating: 0, count: 4096)
        var offset = 4096
    }

    private let state = Mutex(State())

    func next16() -> uuid_t {
        state.withLock { state in
            if state.offset + 16 > state.bytes.count {
                Self.fill(&state.bytes)
                state.offset = 0
            }
            defer { state.offset += 16 }
            return state.bytes.withUnsafeBytes { raw in
                raw.loadUnaligned(fromByteOffset: state.offset, as: uuid_t.self)
            }
        }
    }

    /// Fills `bytes` from `/dev/urandom`; should it ever fail, from the standard library's
    /// generator (also the system's randomness, eight bytes per system call).
    private static func fill(_ bytes: inout [UInt8]) {
        let count = bytes.count
        let filled = bytes.withUnsafeMutableBytes { buffer -> Bool in
            let descriptor = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { return false }
            defer { close(descriptor) }
            var done = 0
            while done < count {
                let got = read(descriptor, buffer.baseAddress! + done, count - done)
                guard got > 0 else { return false }
                done += got
            }
            return true
        }
        if !filled {
            var generator = SystemRandomNumberGenerator()
            for index in bytes.indices { bytes[index] = generator.next() }
        }
    }
}
