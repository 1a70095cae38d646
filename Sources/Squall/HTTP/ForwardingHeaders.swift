import NIOCore

/// The `Forwarded` and `X-Forwarded-For` lines of a raw request head, read before NIO parses it:
/// a trusted proxy's connection is counted against the client it forwards for as soon as its
/// first head is in (``ClientAddresses/client(peer:forwarded:forwardedFor:)`` judges them).
enum ForwardingHeaders {
    /// Each header's value, its lines joined with `, ` as HTTP folds repeated fields; `nil`
    /// for one the head does not have.
    static func values(in head: ByteBuffer) -> (forwarded: String?, forwardedFor: String?) {
        var forwarded: [Substring] = []
        var forwardedFor: [Substring] = []
        let text = String(decoding: head.readableBytesView, as: UTF8.self)
        for line in text.split(separator: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let value = line[line.index(after: colon)...].drop { $0 == " " || $0 == "\t" }
            switch line[..<colon].lowercased() {
            case "forwarded": forwarded.append(value)
            case "x-forwarded-for": forwardedFor.append(value)
            default: continue
            }
        }
        return (forwarded.isEmpty ? nil : forwarded.joined(separator: ", "), forwardedFor.isEmpty ? nil : forwardedFor.joined(separator: ", "))
    }
}
