//! The conformance suite on PostgreSQL (`TEST_DATABASE_URL`, default
//! postgres://postgres@127.0.0.1:5432/test): a schema of its own per scenario,
//! dropped afterwards.

gatehouse_store_conformance::conformance_tests!(gatehouse_store_sql::testing::PgTestSchema::new());
