//! The store test suite. Every test runs against SQLite (a file in a temp dir) and, when
//! `RAMPART_TEST_DATABASE_URL` is set, against that PostgreSQL database too — in a schema of its
//! own. A set but unreachable URL fails the suite instead of skipping PostgreSQL.

mod correlation;
mod detection_rules;
mod devices;
mod harness;
mod indicators;
mod odata;
mod store;
