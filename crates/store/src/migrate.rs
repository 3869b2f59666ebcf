//! Schema migrations, embedded in the binary and applied on start.
//!
//! Each migration exists once per dialect with the same version and name; a store records the
//! versions it has applied and runs the missing ones in order, each in its own transaction.

use crate::error::{Result, StoreError};
use crate::sql::Dialect;
use sqlx::AnyPool;

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "init",
    sqlite: include_str!("migrations/sqlite_0001_init.sql"),
    postgres: include_str!("migrations/postgres_0001_init.sql"),
}];

pub(crate) async fn run(pool: &AnyPool, dialect: Dialect) -> Result<()> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS rampart_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_time BIGINT NOT NULL)",
    )
    .execute(pool)
    .await?;
    for m in MIGRATIONS {
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT version FROM rampart_migrations WHERE version = $1")
                .bind(m.version)
                .fetch_optional(pool)
                .await?;
        if applied.is_some() {
            continue;
        }
        let script = match dialect {
            Dialect::Sqlite => m.sqlite,
            Dialect::Postgres => m.postgres,
        };
        let wrap = |source| StoreError::Migration {
            version: m.version,
            name: m.name,
            source,
        };
        let mut tx = pool.begin().await.map_err(wrap)?;
        for stmt in script.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            sqlx::query(stmt).execute(&mut *tx).await.map_err(wrap)?;
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
