// SPDX-License-Identifier: Apache-2.0

import Foundation
import Testing

/// The database these tests use: `SQUALL_TEST_POSTGRES`, which the test command sets after
/// `scripts/postgres` starts one on 127.0.0.1.
let databaseURL = ProcessInfo.processInfo.environment["SQUALL_TEST_POSTGRES"]

/// A suite that runs only when there is a database.
let needsDatabase: ConditionTrait = .enabled(
    if: databaseURL != nil, "needs a database: SQUALL_TEST_POSTGRES=postgres://… (scripts/postgres starts one)")

/// The URL of `database` on the test server (the test database's own for `nil`).
func databaseURL(of database: String?) -> String {
    let url = databaseURL ?? ""
    guard let database, let slash = url.lastIndex(of: "/") else { return url }
    return url[...slash] + database
}

/// Runs `sql` with Debian's psql, as an operator would, waiting without holding a thread;
/// returns what it prints (unaligned, tuples only), trimmed.
@discardableResult
func psql(_ sql: String, in database: String? = nil) async throws -> String {
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("squall-psql-\(UUID().uuidString)")
    guard FileManager.default.createFile(atPath: output.path, contents: nil) else { throw PsqlFailed(sql: sql) }
    defer { try? FileManager.default.removeItem(at: output) }
    let process = try psqlStart(sql, in: database, output: try FileHandle(forWritingTo: output))
    while process.isRunning { try await Task.sleep(for: .milliseconds(10)) }
    guard process.terminationStatus == 0 else { throw PsqlFailed(sql: sql) }
    return try String(contentsOf: output, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
}

/// psql exited with an error.
struct PsqlFailed: Error {
    let sql: String
}

/// Starts psql running `sql` and returns it running: for a session that holds a lock.
func psqlStart(_ sql: String, in database: String? = nil, output: FileHandle = .nullDevice) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
    process.arguments = ["-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", databaseURL(of: database), "-c", sql]
    process.standardOutput = output
    try process.run()
    return process
}

/// A database of its own for `body`, dropped after it: for a test that locks or cleans whole
/// tables, which would hold up or disturb the suites running beside it.
func withDatabaseOfItsOwn(_ name: String, _ body: (String) async throws -> Void) async throws {
    let database = "squall_\(name)_\(UUID().uuidString.prefix(8).lowercased())"
    try await psql("CREATE DATABASE \(database)")
    do {
        try await body(database)
    } catch {
        _ = try? await psql("DROP DATABASE \(database) WITH (FORCE)")
        throw error
    }
    try await psql("DROP DATABASE \(database) WITH (FORCE)")
}
