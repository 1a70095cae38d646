// SPDX-License-Identifier: Apache-2.0

import Testing

@testable import SquallPostgres

/// What PostgreSQL notifications carry, read back without the database.
@Suite struct PostgresQueriesTests {
    @Test func aUserIdComesBackFromItsHexWhateverItHolds() {
        #expect(PostgresQueries.user(hex: "616c69636520e29c93") == "alice ✓")
        #expect(PostgresQueries.user(hex: "-") == nil, "no user")
    }

    @Test func aNotificationThatIsNotHexGivesNoUserNeverATrap() {
        for text in ["é", "éé", "6", "zz", "61g1", "c3", "ff"] {
            #expect(PostgresQueries.user(hex: text[...]) == nil, "\(text)")
        }
    }
}
