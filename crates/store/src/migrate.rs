//! Schema migrations, embedded in the binary and applied on start.
//!
//! Each migration is one script for both dialects (they differ only in the identity column); a
//! store records the versions it has applied and runs the missing ones in order, each in its own
//! transaction.

use crate::error::{Result, StoreError};
use crate::sql::Dialect;
use sqlx::AnyPool;

struct Migration {
    version: i64,
    name: &'static str,
    /// The script, in SQL both dialects share but for [`SEQ_PRIMARY_KEY`].
    sql: &'static str,
    /// Work SQL cannot do in both dialects, run after the script in its transaction.
    then: Option<Step>,
}

/// A migration step written in Rust.
#[derive(Clone, Copy)]
enum Step {
    /// Computes `indicators.value_key` (a SHA-256 prefix) for the rows that predate it.
    IndicatorValueKeys,
    /// Indexes the entities of the alerts stored before correlation.
    AlertEntities,
}

/// Where a script declares a table's insertion-order key; each dialect writes its own identity
/// column there. It is the only difference between the dialects' schemas.
const SEQ_PRIMARY_KEY: &str = "$SEQ_PRIMARY_KEY";

macro_rules! migration {
    ($version:literal, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("migrations/000", $version, "_", $name, ".sql")),
            then: None,
        }
    };
    ($version:literal, $name:literal, then $step:expr) => {
        Migration {
            then: Some($step),
            ..migration!($version, $name)
        }
    };
}

const MIGRATIONS: &[Migration] = &[
    migration!(1, "init"),
    migration!(2, "machines"),
    migration!(3, "indicators"),
    migration!(4, "machine_actions"),
    migration!(5, "incidents"),
    migration!(6, "devices"),
    migration!(7, "indicator_value_key", then Step::IndicatorValueKeys),
    migration!(8, "detection_rules"),
    migration!(9, "indicator_generation"),
    // Two digits: the macro's "000" prefix would name the file 00010_….
    Migration {
        version: 10,
        name: "yara_rule_sets",
        sql: include_str!("migrations/0010_yara_rule_sets.sql"),
        then: None,
    },
    Migration {
        version: 11,
        name: "library_files",
        sql: include_str!("migrations/0011_library_files.sql"),
        then: None,
    },
    Migration {
        version: 12,
        name: "correlation",
        sql: include_str!("migrations/0012_correlation.sql"),
        then: Some(Step::AlertEntities),
    },
    Migration {
        version: 13,
        name: "tenant_settings",
        sql: include_str!("migrations/0013_tenant_settings.sql"),
        then: None,
    },
    Migration {
        version: 14,
        name: "remediation",
        sql: include_str!("migrations/0014_remediation.sql"),
        then: None,
    },
    Migration {
        version: 15,
        name: "alerts_investigation",
        sql: include_str!("migrations/0015_alerts_investigation.sql"),
        then: None,
    },
];

/// An arbitrary key for PostgreSQL's advisory lock, so that servers starting together against
/// one database apply each migration exactly once.
const MIGRATION_LOCK: i64 = 0x0052_414d_5041_5254; // "RAMPART"

pub(crate) async fn run(pool: &AnyPool, dialect: Dialect) -> Result<()> {
    // One connection for the whole run: the advisory lock belongs to a session.
    let mut conn = pool.acquire().await?;
    if dialect == Dialect::Postgres {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await?;
    }
    let result = apply_missing(&mut conn, dialect).await;
    if dialect == Dialect::Postgres {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await?;
    }
    result
}

async fn apply_missing(conn: &mut sqlx::AnyConnection, dialect: Dialect) -> Result<()> {
    use sqlx::Connection;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS rampart_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_time BIGINT NOT NULL)",
    )
    .execute(&mut *conn)
    .await?;
    for m in MIGRATIONS {
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT version FROM rampart_migrations WHERE version = $1")
                .bind(m.version)
                .fetch_optional(&mut *conn)
                .await?;
        if applied.is_some() {
            continue;
        }
        let seq = match dialect {
            // AUTOINCREMENT: a deleted row's number is never handed out again, so keyset cursors
            // and "rows added while paging come last" stay true.
            Dialect::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Dialect::Postgres => "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        };
        let script = m.sql.replace(SEQ_PRIMARY_KEY, seq);
        let wrap = |source| StoreError::Migration {
            version: m.version,
            name: m.name,
            source,
        };
        let mut tx = conn.begin().await.map_err(wrap)?;
        for stmt in statements(&script) {
            sqlx::query(&stmt).execute(&mut *tx).await.map_err(wrap)?;
        }
        match m.then {
            Some(Step::IndicatorValueKeys) => {
                crate::indicators::backfill_value_keys(&mut tx)
                    .await
                    .map_err(wrap)?;
            }
            Some(Step::AlertEntities) => {
                crate::correlate::backfill(&mut tx).await.map_err(wrap)?;
            }
            None => {}
        }
        sqlx::query(
            "INSERT INTO rampart_migrations (version, name, applied_time) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(rampart_core::timefmt::to_micros(
            time::OffsetDateTime::now_utc(),
        ))
        .execute(&mut *tx)
        .await
        .map_err(wrap)?;
        tx.commit().await.map_err(wrap)?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "applied state store migration"
        );
    }
    Ok(())
}

/// The statements of a script: `--` comment lines dropped (first, so that prose may hold a
/// `;`), then split at `;`.
fn statements(script: &str) -> Vec<String> {
    let code: Vec<&str> = script
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect();
    code.join("\n")
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::statements;

    #[test]
    fn comments_may_hold_semicolons() {
        let script = "-- a; b\nCREATE TABLE t (x INT);\n  -- c;\nCREATE INDEX i ON t (x);\n";
        assert_eq!(
            statements(script),
            vec!["CREATE TABLE t (x INT)", "CREATE INDEX i ON t (x)"]
        );
    }
}
