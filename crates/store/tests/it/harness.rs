//! Opening fresh stores of every configured backend.

use rampart_store::SqlStore;

/// A fresh, migrated store; keeps its temp dir alive.
pub struct TestStore {
    pub name: &'static str,
    pub store: SqlStore,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// The PostgreSQL URL to test against, if configured.
pub fn postgres_url() -> Option<String> {
    std::env::var("RAMPART_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A URL for a new, empty schema in the test PostgreSQL database.
pub async fn fresh_postgres_schema(base: &str) -> String {
    use sqlx::Connection;
    let schema = format!("rt_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(base).await.unwrap_or_else(|e| {
        panic!("RAMPART_TEST_DATABASE_URL is set but PostgreSQL is unreachable at {base}: {e}")
    });
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .expect("create test schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

/// One fresh store per backend.
pub async fn stores() -> Vec<TestStore> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    let sqlite = SqlStore::connect(&url).await.expect("open SQLite store");
    let mut out = vec![TestStore {
        name: "sqlite",
        store: sqlite,
        url,
        _dir: Some(dir),
    }];
    if let Some(base) = postgres_url() {
        let url = fresh_postgres_schema(&base).await;
        let pg = SqlStore::connect(&url)
            .await
            .expect("open PostgreSQL store");
        out.push(TestStore {
            name: "postgres",
            store: pg,
            url,
            _dir: None,
        });
    }
    out
}
