import Foundation
import Testing

/// The database these tests use: `SQUALL_TEST_POSTGRES`, which the test command sets after
/// `scripts/postgres` starts one on 127.0.0.1.
let databaseURL = ProcessInfo.processInfo.environment["SQUALL_TEST_POSTGRES"]

/// A suite that runs only when there is a database.
let needsDatabase: ConditionTrait = .enabled(
    if: databaseURL != nil, "needs a database: SQUALL_TEST_POSTGRES=postgres://… (scripts/postgres starts one)")
