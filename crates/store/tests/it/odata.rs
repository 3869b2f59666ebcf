//! OData `$filter`/`$orderby` compiled by `odata_sql`, executed on real SQLite and PostgreSQL,
//! and checked against a reference evaluation in Rust: the same rows, in the same order, and
//! keyset paging that visits every matching row exactly once while rows are being inserted.

use rampart_core::odata::{
    CmpOp, EntitySet, Field, FieldType, Filter, Literal, OrderBy, QueryOptions, StrFn,
};
use rampart_core::timefmt::{parse, to_micros};
use rampart_store::odata_sql::{self, Cursor};
use rampart_store::sql::{Dialect, SqlBuilder, SqlValue};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};
use std::cmp::Ordering;
use std::time::Duration;

static THINGS: EntitySet = EntitySet {
    name: "Things",
    fields: &[
        Field::new("name", FieldType::String),
        Field::new("level", FieldType::Enum(&["Low", "Medium", "High"])),
        Field::new("size", FieldType::Int),
        Field::new("isActive", FieldType::Bool),
        Field::new("createdTime", FieldType::DateTime),
        Field::new("tags", FieldType::StringCollection),
    ],
    expand: &[],
};

const TENANT: &str = "t1";
const OTHER_TENANT: &str = "t2";

/// A row as stored: text or integer (booleans 0/1, datetimes microseconds), or NULL.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Val {
    Int(i64),
    Text(String),
}

#[derive(Clone, Debug)]
struct Thing {
    seq: i64,
    tenant: &'static str,
    name: Option<String>,
    level: Option<&'static str>,
    size: Option<i64>,
    is_active: Option<bool>,
    created_time: Option<i64>,
    tags: Vec<&'static str>,
}

impl Thing {
    fn get(&self, field: &str) -> Option<Val> {
        match field {
            "name" => self.name.clone().map(Val::Text),
            "level" => self.level.map(|l| Val::Text(l.to_owned())),
            "size" => self.size.map(Val::Int),
            "isActive" => self.is_active.map(|b| Val::Int(i64::from(b))),
            "createdTime" => self.created_time.map(Val::Int),
            other => panic!("no field {other}"),
        }
    }
}

/// splitmix64: deterministic data, so that a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize].clone()
    }
}

const NAMES: &[&str] = &[
    "alpha", "Alpha", "ALPHA2", "beta", "a%b", "a_b", "axb", r"c\d", "gamma", "", "it's", "zeta",
];
const TAGS: &[&str] = &["red", "green", "blue", "Red2", "x_y"];

fn random_thing(rng: &mut Rng, seq: i64, tenant: &'static str) -> Thing {
    let day = 86_400_000_000_i64;
    let base = to_micros(parse("2024-01-01T00:00:00Z").unwrap());
    let maybe = |rng: &mut Rng| rng.below(5) != 0; // one in five is NULL
    let name = maybe(rng).then(|| rng.pick(NAMES).to_owned());
    let level = maybe(rng).then(|| rng.pick(&["Low", "Medium", "High"]));
    let size = maybe(rng).then(|| rng.below(9) as i64);
    let is_active = maybe(rng).then(|| rng.below(2) == 1);
    let created_time = maybe(rng).then(|| base + (rng.below(6) as i64) * day / 2);
    let mut tags: Vec<&'static str> = Vec::new();
    for _ in 0..rng.below(4) {
        let t = rng.pick(TAGS);
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    Thing {
        seq,
        tenant,
        name,
        level,
        size,
        is_active,
        created_time,
        tags,
    }
}

// ---------------------------------------------------------------- reference evaluation

fn literal_val(l: &Literal) -> Option<Val> {
    match l {
        Literal::Null => None,
        Literal::String(s) => Some(Val::Text(s.clone())),
        Literal::Int(i) => Some(Val::Int(*i)),
        Literal::Bool(b) => Some(Val::Int(i64::from(*b))),
        Literal::DateTime(t) => Some(Val::Int(to_micros(*t))),
    }
}

/// OData semantics as Rampart implements them: a comparison with a NULL property is false,
/// except `ne` (true) and `eq null`/`ne null`; `not` negates that two-valued result.
fn eval(f: &Filter, row: &Thing, lambda: Option<(&str, &str)>) -> bool {
    let value = |field: &str| match lambda {
        Some((var, elem)) if var == field => Some(Val::Text(elem.to_owned())),
        _ => row.get(field),
    };
    match f {
        Filter::And(a, b) => eval(a, row, lambda) && eval(b, row, lambda),
        Filter::Or(a, b) => eval(a, row, lambda) || eval(b, row, lambda),
        Filter::Not(a) => !eval(a, row, lambda),
        Filter::Compare {
            field,
            op,
            value: lit,
        } => {
            let v = value(field);
            match (op, literal_val(lit)) {
                (CmpOp::Eq, None) => v.is_none(),
                (CmpOp::Ne, None) => v.is_some(),
                (_, None) => false,
                (CmpOp::Ne, Some(l)) => v != Some(l),
                (op, Some(l)) => v.is_some_and(|v| match op {
                    CmpOp::Eq => v == l,
                    CmpOp::Gt => v > l,
                    CmpOp::Ge => v >= l,
                    CmpOp::Lt => v < l,
                    CmpOp::Le => v <= l,
                    CmpOp::Ne => unreachable!(),
                }),
            }
        }
        Filter::In { field, values } => {
            let v = value(field);
            v.is_some() && values.iter().any(|l| literal_val(l) == v)
        }
        Filter::StrFn {
            func,
            field,
            value: pat,
        } => match value(field) {
            Some(Val::Text(s)) => {
                let (s, pat) = (s.to_ascii_lowercase(), pat.to_ascii_lowercase());
                match func {
                    StrFn::StartsWith => s.starts_with(&pat),
                    StrFn::EndsWith => s.ends_with(&pat),
                    StrFn::Contains => s.contains(&pat),
                }
            }
            _ => false,
        },
        Filter::Any {
            field,
            var,
            predicate,
        } => {
            assert_eq!(field, "tags");
            row.tags
                .iter()
                .any(|t| eval(predicate, row, Some((var, t))))
        }
    }
}

/// The order `push_order_by` asks for: NULL lowest, `seq` last in the last key's direction.
fn compare(a: &Thing, b: &Thing, keys: &[OrderBy]) -> Ordering {
    for k in keys {
        let ord = a.get(k.field.name).cmp(&b.get(k.field.name)); // None < Some
        let ord = if k.descending { ord.reverse() } else { ord };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    let ord = a.seq.cmp(&b.seq);
    if keys.last().is_some_and(|k| k.descending) {
        ord.reverse()
    } else {
        ord
    }
}

fn expected(rows: &[Thing], q: &QueryOptions) -> Vec<i64> {
    let mut m: Vec<&Thing> = rows
        .iter()
        .filter(|r| r.tenant == TENANT && q.filter.as_ref().is_none_or(|f| eval(f, r, None)))
        .collect();
    m.sort_by(|a, b| compare(a, b, &q.orderby));
    m.iter().map(|r| r.seq).collect()
}

// ---------------------------------------------------------------- database side

struct Db {
    name: &'static str,
    pool: AnyPool,
    dialect: Dialect,
    table: String,
    /// PostgreSQL's text order follows the database collation; the reference compares bytes.
    byte_order_text: bool,
}

impl Db {
    async fn create(&self) {
        let t = &self.table;
        for stmt in [
            format!(
                "CREATE TABLE {t} (seq BIGINT PRIMARY KEY, tenant_id TEXT NOT NULL, name TEXT, level TEXT, size BIGINT, \
                 is_active BIGINT, created_time BIGINT)"
            ),
            format!("CREATE INDEX {t}_created ON {t} (tenant_id, created_time, seq)"),
            format!("CREATE TABLE {t}_tags (entity_seq BIGINT NOT NULL, value TEXT NOT NULL)"),
            format!("CREATE INDEX {t}_tags_seq ON {t}_tags (entity_seq)"),
        ] {
            sqlx::query(&stmt)
                .execute(&self.pool)
                .await
                .unwrap_or_else(|e| panic!("{}: {stmt}: {e}", self.name));
        }
    }

    async fn drop_tables(&self) {
        for t in [format!("{}_tags", self.table), self.table.clone()] {
            let _ = sqlx::query(&format!("DROP TABLE IF EXISTS {t}"))
                .execute(&self.pool)
                .await;
        }
    }

    async fn insert(&self, rows: &[Thing]) {
        let mut tx = self.pool.begin().await.unwrap();
        for r in rows {
            let sql = format!(
                "INSERT INTO {} (seq, tenant_id, name, level, size, is_active, created_time) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                self.table
            );
            sqlx::query(&sql)
                .bind(r.seq)
                .bind(r.tenant)
                .bind(r.name.clone())
                .bind(r.level)
                .bind(r.size)
                .bind(r.is_active.map(i64::from))
                .bind(r.created_time)
                .execute(&mut *tx)
                .await
                .unwrap();
            for tag in &r.tags {
                sqlx::query(&format!(
                    "INSERT INTO {}_tags (entity_seq, value) VALUES ($1, $2)",
                    self.table
                ))
                .bind(r.seq)
                .bind(*tag)
                .execute(&mut *tx)
                .await
                .unwrap();
            }
        }
        tx.commit().await.unwrap();
    }

    async fn delete_from(&self, first_seq: i64) {
        for sql in [
            format!("DELETE FROM {0}_tags WHERE entity_seq >= $1", self.table),
            format!("DELETE FROM {} WHERE seq >= $1", self.table),
        ] {
            sqlx::query(&sql)
                .bind(first_seq)
                .execute(&self.pool)
                .await
                .unwrap();
        }
    }

    /// The query `Store::list` runs: matching rows of the tenant after `cursor`, in order.
    async fn select(
        &self,
        q: &QueryOptions,
        cursor: Option<&Cursor>,
        limit: Option<i64>,
    ) -> Vec<sqlx::any::AnyRow> {
        let t = self.table.as_str();
        let mut b = SqlBuilder::new(self.dialect);
        b.push("SELECT ").push(t).push(".seq AS seq");
        odata_sql::push_select_sort_keys(&mut b, t, &q.orderby);
        b.push(" FROM ")
            .push(t)
            .push(" WHERE ")
            .push(t)
            .push(".tenant_id = ")
            .push_param(SqlValue::Text(TENANT.into()));
        if let Some(f) = &q.filter {
            b.push(" AND ");
            odata_sql::push_filter(&mut b, t, f, &THINGS);
        }
        if let Some(c) = cursor {
            b.push(" AND ");
            odata_sql::push_keyset(&mut b, t, &q.orderby, c);
        }
        b.push(" ");
        odata_sql::push_order_by(&mut b, t, &q.orderby);
        if let Some(n) = limit {
            b.push(" LIMIT ").push_param(SqlValue::Int(n));
        }
        b.query()
            .fetch_all(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}\n{}\n{:?}", self.name, b.sql, b.params))
    }
}

fn options(filter: &str, orderby: &str) -> QueryOptions {
    let mut pairs = Vec::new();
    if !filter.is_empty() {
        pairs.push(("$filter".to_owned(), filter.to_owned()));
    }
    if !orderby.is_empty() {
        pairs.push(("$orderby".to_owned(), orderby.to_owned()));
    }
    QueryOptions::parse(&pairs, &THINGS).unwrap_or_else(|e| panic!("{filter} / {orderby}: {e}"))
}

fn seqs(rows: &[sqlx::any::AnyRow]) -> Vec<i64> {
    rows.iter()
        .map(|r| r.try_get::<i64, _>("seq").unwrap())
        .collect()
}

const FILTERS: &[&str] = &[
    "",
    "size gt 3",
    "size ge 3 and size le 5",
    "size ne 4",
    "size eq null",
    "size ne null",
    "not size gt 3",
    "not (size gt 3 or level eq 'High')",
    "5 lt size",
    "size in (1, 2, 8)",
    "size in ()",
    "level eq 'high'",
    "level ne 'Low'",
    "level in ('Low','HIGH')",
    "contains(level,'DIU')",
    "isActive eq true",
    "isActive ne true",
    "isActive eq false or isActive eq null",
    "createdTime ge 2024-01-02T00:00:00Z",
    "createdTime lt 2024-01-02",
    "createdTime gt '2024-01-01T13:00:00+01:00'",
    "createdTime eq null or size lt 2",
    "startswith(name,'al')",
    "startswith(name,'AL') eq false",
    "endswith(name,'B')",
    "contains(name,'%')",
    "contains(name,'_')",
    r"contains(name,'\')",
    "contains(name,'''')",
    "name eq 'alpha'",
    "name eq ''",
    "name gt 'b'",
    "name le 'a_b' and name ne null",
    "name in ('alpha','beta','zeta')",
    "tags/any(t: t eq 'red')",
    "tags/any(t: startswith(t,'r'))",
    "not tags/any(t: t eq 'blue')",
    "tags/any(t: t eq 'red' or t eq 'blue') and not tags/any(t: t eq 'green')",
    "tags/any(x: x in ('green','x_y') and not contains(x,'%')) and size ge 2",
    "(level eq 'Low' or level eq null) and (isActive eq true or createdTime ne null) and not contains(name,'a')",
];

const ORDERBYS: &[&str] = &[
    "",
    "size",
    "size desc",
    "name",
    "name desc",
    "level, size desc",
    "createdTime desc, name",
    "isActive, createdTime, size desc",
    "createdTime",
    "level desc, isActive desc, name, createdTime",
];

fn text_order_ok(db: &Db, orderby: &str) -> bool {
    db.byte_order_text || !(orderby.contains("name") || orderby.contains("level"))
}

/// Every filter under every ordering returns the reference's rows in the reference's order.
async fn check_results(db: &Db, rows: &[Thing]) {
    for f in FILTERS {
        for o in ORDERBYS {
            if !text_order_ok(db, o) {
                continue;
            }
            let q = options(f, o);
            let got = seqs(&db.select(&q, None, None).await);
            assert_eq!(
                got,
                expected(rows, &q),
                "{}: $filter={f} $orderby={o}",
                db.name
            );
        }
    }
}

/// Pages through with keyset cursors (round-tripped through `$skiptoken`), inserting rows
/// between pages; every row matching at the start is visited exactly once, in order, and so is
/// every new row inserted after the current position.
async fn check_paging(
    db: &Db,
    rows: &mut Vec<Thing>,
    rng: &mut Rng,
    filter: &str,
    orderby: &str,
    top: usize,
) {
    let q = options(filter, orderby);
    let at_start = expected(rows, &q);
    let first_new = rows.iter().map(|r| r.seq).max().unwrap_or(0) + 1;
    let mut next_seq = first_new;
    let mut visited: Vec<i64> = Vec::new();
    let mut must_visit: Vec<i64> = Vec::new();
    let mut cursor: Option<Cursor> = None;
    let ctx = format!(
        "{}: $filter={filter} $orderby={orderby} $top={top}",
        db.name
    );
    for page in 0.. {
        assert!(page < 1000, "{ctx}: paging does not end");
        let got = db.select(&q, cursor.as_ref(), Some(top as i64 + 1)).await;
        visited.extend(seqs(&got).into_iter().take(top));
        if got.len() <= top {
            break;
        }
        let c = Cursor::from_row(&got[top - 1], &q.orderby).unwrap();
        let c = Cursor::decode(&c.encode(), &q.orderby).unwrap();

        // New rows, some before and some after the cursor in the order.
        let last = rows.iter().find(|r| r.seq == c.seq).cloned().unwrap();
        let new: Vec<Thing> = (0..3)
            .map(|i| {
                next_seq += 1;
                random_thing(rng, next_seq, if i == 2 { OTHER_TENANT } else { TENANT })
            })
            .collect();
        for r in &new {
            let matches = r.tenant == TENANT && q.filter.as_ref().is_none_or(|f| eval(f, r, None));
            if matches && compare(r, &last, &q.orderby) == Ordering::Greater {
                must_visit.push(r.seq);
            }
        }
        db.insert(&new).await;
        rows.extend(new);
        cursor = Some(c);
    }

    let by_seq = |s: i64| rows.iter().find(|r| r.seq == s).unwrap();
    for w in visited.windows(2) {
        assert_eq!(
            compare(by_seq(w[0]), by_seq(w[1]), &q.orderby),
            Ordering::Less,
            "{ctx}: out of order or repeated: {w:?}"
        );
    }
    for s in &visited {
        let r = by_seq(*s);
        assert!(
            r.tenant == TENANT && q.filter.as_ref().is_none_or(|f| eval(f, r, None)),
            "{ctx}: row {s} does not match"
        );
    }
    for s in at_start.iter().chain(&must_visit) {
        assert!(visited.contains(s), "{ctx}: row {s} was never visited");
    }

    db.delete_from(first_new).await;
    rows.retain(|r| r.seq < first_new);
}

async fn run(db: &Db) {
    db.create().await;
    let mut rng = Rng(0x5EED);
    let mut rows: Vec<Thing> = (1..=300)
        .map(|seq| {
            random_thing(
                &mut rng,
                seq,
                if seq % 10 == 0 { OTHER_TENANT } else { TENANT },
            )
        })
        .collect();
    db.insert(&rows).await;

    check_results(db, &rows).await;

    for (i, o) in ORDERBYS.iter().enumerate() {
        if !text_order_ok(db, o) {
            continue;
        }
        for f in [
            "",
            "size ne 4",
            "tags/any(t: t eq 'red') or createdTime eq null",
            "not contains(name,'a')",
        ] {
            check_paging(db, &mut rows, &mut rng, f, o, 7 + i % 3).await;
        }
    }
    check_paging(db, &mut rows, &mut rng, "", "createdTime desc", 1).await;
    check_paging(db, &mut rows, &mut rng, "size in ()", "size", 5).await;
}

/// Runs the checks, dropping the scratch tables whether they pass or not.
async fn run_and_clean_up(db: Db) {
    let db = std::sync::Arc::new(db);
    let outcome = tokio::spawn({
        let db = db.clone();
        async move { run(&db).await }
    })
    .await;
    db.drop_tables().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

fn scratch_table() -> String {
    format!(
        "odata_it_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

#[tokio::test]
async fn sqlite_filters_and_keyset_paging() {
    sqlx::any::install_default_drivers();
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("odata.db").display()
    );
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    run_and_clean_up(Db {
        name: "sqlite",
        pool,
        dialect: Dialect::Sqlite,
        table: scratch_table(),
        byte_order_text: true,
    })
    .await;
}

#[tokio::test]
async fn postgres_filters_and_keyset_paging() {
    let Some(url) = crate::harness::postgres_url() else {
        eprintln!("RAMPART_TEST_DATABASE_URL is not set: PostgreSQL OData checks skipped");
        return;
    };
    sqlx::any::install_default_drivers();
    // Set but unreachable must fail the test, not skip it.
    let pool = AnyPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(15))
        .connect(&url)
        .await
        .unwrap_or_else(|e| {
            panic!("RAMPART_TEST_DATABASE_URL is set but PostgreSQL is unreachable: {e}")
        });
    let collation: String =
        sqlx::query("SELECT datcollate::text FROM pg_database WHERE datname = current_database()")
            .fetch_one(&pool)
            .await
            .and_then(|r| r.try_get(0))
            .unwrap_or_default();
    let byte_order_text = matches!(collation.as_str(), "C" | "POSIX" | "C.UTF-8" | "C.utf8");
    if !byte_order_text {
        eprintln!(
            "database collation {collation:?} does not order text by bytes: text orderings skipped"
        );
    }
    run_and_clean_up(Db {
        name: "postgres",
        pool,
        dialect: Dialect::Postgres,
        table: scratch_table(),
        byte_order_text,
    })
    .await;
}
