//! The conformance suite on SQLite: a file of its own per scenario.

gatehouse_store_conformance::conformance_tests!(gatehouse_store_sql::testing::SqliteTestFile::new());
