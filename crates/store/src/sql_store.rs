//! [`Store`] on SQLite or PostgreSQL through sqlx's `Any` driver.

use crate::error::{Result, StoreError};
use crate::sql::Dialect;
use crate::{Collection, Page, Store};
use async_trait::async_trait;
use rampart_core::TenantId;
use rampart_core::odata::{Filter, QueryOptions};
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use std::sync::Once;
use std::time::Duration;

/// The SQL implementation of [`Store`].
#[derive(Clone, Debug)]
pub struct SqlStore {
    pub(crate) pool: AnyPool,
    /// Where write transactions that must not wait in SQLite's busy handler run: on SQLite a
    /// pool of one connection (see [`SqlStore::connect`]), on PostgreSQL `pool` itself.
    pub(crate) writer: AnyPool,
    pub(crate) dialect: Dialect,
    pub(crate) bell: std::sync::Arc<crate::bell::ActionBell>,
    /// Indicator generations written through this store (see [`crate::generations`]).
    pub(crate) own_generations: std::sync::Arc<crate::generations::OwnGenerations>,
}

impl SqlStore {
    /// Opens (creating if needed) the store at `url` and applies pending migrations.
    ///
    /// `sqlite://PATH` opens a file in WAL mode; `postgres://…` a PostgreSQL database (its
    /// `options` parameter may set a `search_path`).
    pub async fn connect(url: &str) -> Result<SqlStore> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);

        let (dialect, url) = if let Some(rest) = url.strip_prefix("sqlite:") {
            // Make the file on first start; keep an explicit mode the caller gave.
            let mut u = format!("sqlite:{rest}");
            if !rest.contains("mode=") {
                u.push_str(if rest.contains('?') {
                    "&mode=rwc"
                } else {
                    "?mode=rwc"
                });
            }
            (Dialect::Sqlite, u)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Dialect::Postgres, url.to_owned())
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };

        let connect = |options: AnyPoolOptions| {
            let url = url.clone();
            async move {
                options
                    .connect(&url)
                    .await
                    .map_err(|source| StoreError::Connect {
                        url: redact(&url),
                        source,
                    })
            }
        };
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        let pool = match dialect {
            Dialect::Sqlite => {
                // 64 MB of page cache per connection, and memory-mapped reads, keep the hot part
                // of the tables in memory. The map covers the whole file (256 GiB of address
                // space, not memory): with a 1 GiB map, deep pages of a 2.7 GB alert table went
                // through pread into each connection's cache and were 3x slower than the first
                // page. SQLite caps the map at build time; .cargo/config.toml lifts that cap.
                connect(options.max_connections(8).after_connect(|conn, _meta| {
                    Box::pin(sqlite_pragmas(conn, -65_536, 274_877_906_944))
                }))
                .await?
            }
            Dialect::Postgres => connect(options.max_connections(16)).await?,
        };
        crate::migrate::run(&pool, dialect).await?;
        let writer = match dialect {
            // SQLite has one writer at a time. Queueing writers on a pool of one connection
            // (FIFO, no sleeping) instead of SQLite's busy handler (sleeps of 1 to 100 ms) keeps
            // the write lock busy under concurrent imports, and the connection's page cache
            // stays valid from one write to the next: SQLite empties a connection's cache
            // whenever another connection has written, so writers taking turns on a pool of
            // eight read every index page back from the WAL. Its cache is larger (256 MB) and
            // not memory-mapped: a growing file made SQLite remap it again and again.
            Dialect::Sqlite => {
                connect(
                    AnyPoolOptions::new()
                        .max_connections(1)
                        .acquire_timeout(Duration::from_secs(60))
                        .after_connect(|conn, _meta| Box::pin(sqlite_pragmas(conn, -262_144, 0))),
                )
                .await?
            }
            Dialect::Postgres => pool.clone(),
        };
        Ok(SqlStore {
            pool,
            writer,
            dialect,
            bell: Default::default(),
            own_generations: Default::default(),
        })
    }
}

/// The settings of every SQLite connection; `cache_kib` is SQLite's `cache_size` (negative:
/// KiB), `mmap_bytes` its `mmap_size`.
async fn sqlite_pragmas(
    conn: &mut sqlx::AnyConnection,
    cache_kib: i64,
    mmap_bytes: i64,
) -> sqlx::Result<()> {
    use sqlx::Executor;
    // WAL lets readers run beside the single writer; NORMAL sync is durable across process
    // crashes and loses at most the last commit on power loss.
    conn.execute("PRAGMA journal_mode = WAL").await?;
    conn.execute("PRAGMA synchronous = NORMAL").await?;
    conn.execute("PRAGMA busy_timeout = 10000").await?;
    conn.execute(format!("PRAGMA cache_size = {cache_kib}").as_str())
        .await?;
    conn.execute(format!("PRAGMA mmap_size = {mmap_bytes}").as_str())
        .await?;
    conn.execute("PRAGMA temp_store = MEMORY").await?;
    // A commit checkpoints by itself once the WAL holds this many pages (64 MiB; SQLite's
    // default is 1,000). Bulk writes dirty the same index pages again and again; a larger WAL
    // copies each of them to the file once, not many times.
    conn.execute("PRAGMA wal_autocheckpoint = 16384").await?;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    Ok(())
}

/// The URL without its password, for error messages and logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[async_trait]
impl Store for SqlStore {
    fn dialect(&self) -> Dialect {
        self.dialect
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn list(
        &self,
        tenant: TenantId,
        collection: Collection,
        query: &QueryOptions,
        scope: Option<&Filter>,
    ) -> Result<Page> {
        crate::list::list_page(self, tenant, collection, query, scope).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
