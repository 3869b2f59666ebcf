#!/usr/bin/env python3
"""SQLite alone, writing indicators as Rampart's store does (docs/BENCHMARKS.md, "Indicator import", tenth round).

usage: sqlite-indicator-writes.py VARIANT ROWS [ROWS_PER_TRANSACTION]
VARIANT names the levers, joined by "-": "compact" (stored document without the fields kept in columns),
"vals" (lookup joins a VALUES list instead of IN), "plain" (INSERT OR ROLLBACK instead of the upsert),
"noidx" (without the creation-time and expiration indexes), "p1024"/"p2048"/"p8192" (that page size instead of
4096); "base" uses none. The file goes to /var/tmp/exp.
"""
import sqlite3, os, sys, time, json, hashlib, random, struct
variant = sys.argv[1]; N = int(sys.argv[2]); PER = int(sys.argv[3]) if len(sys.argv) > 3 else 500
os.makedirs("/var/tmp/exp", exist_ok=True)
path = f"/var/tmp/exp/sq-{variant}.db"
for s in ("", "-wal", "-shm"):
    try: os.remove(path + s)
    except FileNotFoundError: pass
db = sqlite3.connect(path, isolation_level=None)
for size in (1024, 2048, 8192):
    if f"p{size}" in variant.split("-"):
        db.execute(f"PRAGMA page_size = {size}")
for p in ["journal_mode = WAL", "synchronous = NORMAL", "cache_size = -262144", "mmap_size = 0",
          "temp_store = MEMORY", "wal_autocheckpoint = 16384", "foreign_keys = ON"]:
    db.execute("PRAGMA " + p)
T = "8f4c1f0e-1111-2222-3333-444455556666"
compact = "compact" in variant
noidx = "noidx" in variant
db.executescript(f"""
CREATE TABLE tenants (id TEXT PRIMARY KEY, name TEXT NOT NULL);
INSERT INTO tenants VALUES ('{T}', 'default');
CREATE TABLE indicators (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL, indicator_value TEXT NOT NULL, indicator_type TEXT NOT NULL, action TEXT NOT NULL,
    application TEXT, title TEXT NOT NULL, severity TEXT NOT NULL, generate_alert BIGINT NOT NULL,
    created_by TEXT NOT NULL, created_by_display_name TEXT, creation_time_date_time_utc BIGINT NOT NULL,
    expiration_time BIGINT, row_version BIGINT NOT NULL DEFAULT 0, body TEXT NOT NULL, value_key BIGINT);
CREATE UNIQUE INDEX indicators_id ON indicators (tenant_id, id);
CREATE INDEX indicators_tenant ON indicators (tenant_id, seq);
CREATE INDEX indicators_created_by ON indicators (tenant_id, created_by, seq);
{"" if noidx else "CREATE INDEX indicators_created ON indicators (tenant_id, creation_time_date_time_utc, seq);"}
{"" if noidx else "CREATE INDEX indicators_expiration ON indicators (tenant_id, expiration_time, seq);"}
CREATE UNIQUE INDEX indicators_value_key ON indicators (value_key, indicator_type);
CREATE TABLE indicator_counters (tenant_id TEXT PRIMARY KEY REFERENCES tenants (id), last_id BIGINT NOT NULL, generation BIGINT NOT NULL DEFAULT 0);
CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL, time BIGINT NOT NULL, action TEXT NOT NULL,
  entity_type TEXT NOT NULL, entity_id TEXT NOT NULL, actor_id TEXT NOT NULL, correlation_id TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX audit_tenant_time ON audit (tenant_id, time, seq);
CREATE INDEX audit_entity ON audit (tenant_id, entity_type, entity_id, seq);
""")
rnd = random.Random(1)
def vk(v): return struct.unpack(">q", hashlib.sha256((T + "\0" + v).encode()).digest()[:8])[0]
rows = []
now = 1_790_000_000_000_000
for n in range(N):
    v = "%064x" % rnd.getrandbits(256)
    exp = 4_102_358_400_000_000 if n % 2 else None
    doc = {"id": str(n+1), "indicatorValue": v, "indicatorType": "FileSha256", "action": "Block", "application": "ThreatFeed",
           "source": "app", "sourceType": "AadApp", "title": f"Feed item {n}",
           "description": "Observed in a commodity malware campaign; imported from the threat-intel feed.",
           "recommendedActions": "Isolate the device and investigate.", "externalID": f"feed-{n}",
           "createdBy": "11111111-2222-3333-4444-555555555555", "createdBySource": "app", "createdByDisplayName": "Bench app",
           "creationTimeDateTimeUtc": "2026-12-07T17:00:00.123456Z", "expirationTime": "2099-12-31T00:00:00Z" if exp else None,
           "lastUpdateTime": "2026-12-07T17:00:00.123456Z", "lastUpdatedBy": "11111111-2222-3333-4444-555555555555",
           "severity": "High", "generateAlert": False, "educateUrl": None, "rbacGroupNames": [], "rbacGroupIds": []}
    if compact:
        for k in ("id","indicatorValue","indicatorType","action","application","title","createdBy","createdByDisplayName",
                  "creationTimeDateTimeUtc","expirationTime","severity","generateAlert","rbacGroupNames","rbacGroupIds"):
            doc.pop(k, None)
        doc = {k: v2 for k, v2 in doc.items() if v2 is not None}
    body = json.dumps(doc, separators=(",", ":"))
    rows.append((T, str(n+1), vk(v), v, "FileSha256", "Block", "ThreatFeed", f"Feed item {n}", "High", 0,
                 "11111111-2222-3333-4444-555555555555", "Bench app", now + n, exp, 0, body))
print("body bytes", len(rows[0][-1]))
PER_STMT = 62
up = ("INSERT INTO indicators (tenant_id, id, value_key, indicator_value, indicator_type, action, application, title, severity, "
      "generate_alert, created_by, created_by_display_name, creation_time_date_time_utc, expiration_time, row_version, body) VALUES ")
conf = (" ON CONFLICT (value_key, indicator_type) DO UPDATE SET action = excluded.action, application = excluded.application, "
        "title = excluded.title, severity = excluded.severity, generate_alert = excluded.generate_alert, "
        "created_by_display_name = excluded.created_by_display_name, expiration_time = excluded.expiration_time, "
        "row_version = excluded.row_version, body = excluded.body WHERE indicators.id = excluded.id AND "
        "indicators.row_version = excluded.row_version - 1 AND indicators.tenant_id = excluded.tenant_id AND "
        "indicators.indicator_value = excluded.indicator_value")
plain = "plain" in variant
values_lookup = "vals" in variant
t0 = time.time(); calls = 0
for start in range(0, N, PER):
    chunk = rows[start:start+PER]
    db.execute("BEGIN IMMEDIATE")
    keys = sorted(set(r[2] for r in chunk))
    for i in range(0, len(keys), 500):
        ks = keys[i:i+500]
        if values_lookup:
            q = ("WITH k(v) AS (VALUES " + ",".join(["(?)"]*len(ks)) + ") SELECT seq, row_version, tenant_id, value_key, indicator_type, indicator_value, body FROM k JOIN indicators ON indicators.value_key = k.v")
        else:
            q = "SELECT seq, row_version, tenant_id, value_key, indicator_type, indicator_value, body FROM indicators WHERE value_key IN (" + ",".join("?"*len(ks)) + ")"
        db.execute(q, ks).fetchall()
    db.execute("INSERT INTO indicator_counters (tenant_id, last_id) VALUES (?, ?) ON CONFLICT (tenant_id) DO UPDATE SET last_id = indicator_counters.last_id + excluded.last_id RETURNING last_id", (T, len(chunk))).fetchall()
    db.execute("INSERT INTO indicator_counters (tenant_id, last_id, generation) VALUES (?, 0, 1) ON CONFLICT (tenant_id) DO UPDATE SET generation = indicator_counters.generation + 1 RETURNING generation", (T,)).fetchall()
    srt = sorted(chunk, key=lambda r: r[2])
    for i in range(0, len(srt), PER_STMT):
        c = srt[i:i+PER_STMT]
        if plain:
            q = "INSERT OR ROLLBACK INTO" + up[len("INSERT INTO"):] + ",".join(["(" + ",".join("?"*16) + ")"]*len(c))
        else:
            q = up + ",".join(["(" + ",".join("?"*16) + ")"]*len(c)) + conf
        db.execute(q, [x for r in c for x in r])
    db.execute("INSERT INTO audit (tenant_id, time, action, entity_type, entity_id, actor_id, correlation_id, body) VALUES (?,?,?,?,?,?,?,?)",
               (T, now, "Import", "Indicator", "500 items", "app", "corr", json.dumps({"ids": [r[1] for r in chunk[:100]]})))
    db.execute("COMMIT")
    calls += 1
    if calls % 8 == 0:
        db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
dt = time.time() - t0
print(variant, PER, f"{N/dt:,.0f} rows/s", f"{dt:.1f}s", os.path.getsize(path)//1_000_000, "MB")
