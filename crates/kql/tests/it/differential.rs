//! Differential tests: KQL queries that have an exact SQL equivalent run through
//! `rampart_kql::run` and, as SQL, through DuckDB (Python's `duckdb`) over the same rows,
//! written to Parquet from the very record batches the KQL engine reads. Results are
//! compared as sorted sets of rows, numbers and timestamps normalised.
//!
//! Only exact equivalents belong here. KQL's string semantics that SQL has no operator
//! for (`has`, term boundaries) are left out, and so is anything whose result depends
//! on row order (`take` without a full `sort`, `make_list`) or on ties (`top` by a
//! non-unique key). Where Kusto and SQL genuinely differ, the SQL spells out Kusto's
//! meaning:
//! - KQL strings are never null: an outer join's missing side reads `coalesce(x, '')`;
//! - `sum` ignores nulls and sums nothing to 0 (Kusto's accumulator starts at 0, as the
//!   reference's "empty input gives 0" shows), where SQL's `SUM` of only nulls is NULL:
//!   `coalesce(sum(x), 0)`. The plain `sum(x)` form of DeviceProcessEvents by hour, whose
//!   12:00 bin has one row without a FileSize, differed for this reason and was dropped;
//! - case-insensitive comparisons (`=~`, `in~`, `startswith`, `contains`...) fold ASCII
//!   letters only (reference §2), where DuckDB's `lower()` and `ILIKE` fold all of
//!   Unicode: the SQL uses an `ascii_lower` macro (`translate` of A-Z). With `lower()`,
//!   `in~ ("Élodie")` matched `élodie` in DuckDB only, so that form was dropped;
//! - `arg_max(e, c)` returns `c` of the row with the largest `e` even when `c` is null,
//!   where DuckDB's `arg_max(c, e)` skips rows whose `c` is null (it gave another row's
//!   Bytes for two devices and was dropped): `arg_max_null(c, e)`.
//!
//! DuckDB comes from PyPI (`pip install duckdb`; CI installs it). Without it the test
//! fails, unless `RAMPART_SKIP_DUCKDB=1` is set.

use crate::hunt_data;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, TimestampNanosecondArray,
};
use datafusion::arrow::datatypes::{
    DataType, Field, Float64Type, Int32Type, Int64Type, Schema, SchemaRef, TimestampNanosecondType,
    UInt64Type,
};
use datafusion::common::TableReference;
use datafusion::datasource::MemTable;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::SessionContext;
use rampart_kql::{HuntResult, Limits, QueryParameters};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

/// One query in both languages. The SQL selects the KQL result's columns in order.
struct Case {
    kql: &'static str,
    sql: &'static str,
}

/// `now()` of the KQL side; the SQL writes the same instant as a literal.
const QUERY_NOW: &str = "set query_now = datetime(2024-03-07T00:00:00Z);\n";

const CASES: &[Case] = &[
    // ---- filters: ==, !=, in, in~, =~, startswith, endswith, contains, between
    Case {
        kql: r#"Events | where Device == "ws-01" | project Pid, Bytes"#,
        sql: r#"SELECT Pid, Bytes FROM Events WHERE Device = 'ws-01'"#,
    },
    Case {
        kql: r#"Events | where Device != "ws-01" and Bytes > 1000 | project Pid, Device"#,
        sql: r#"SELECT Pid, Device FROM Events WHERE Device <> 'ws-01' AND Bytes > 1000"#,
    },
    Case {
        kql: r#"Events | where Account in ("alice", "bob", "") | project Pid, Account"#,
        sql: r#"SELECT Pid, Account FROM Events WHERE Account IN ('alice', 'bob', '')"#,
    },
    Case {
        kql: r#"Events | where Account in~ ("ALICE", "Bob", "Élodie") | project Pid, Account"#,
        sql: r#"SELECT Pid, Account FROM Events WHERE ascii_lower(Account) IN ('alice', 'bob', 'Élodie')"#,
    },
    Case {
        kql: r#"Events | where Account !in~ ("alice", "svc_backup") | summarize count() by Account"#,
        sql: r#"SELECT Account, count(*) FROM Events WHERE ascii_lower(Account) NOT IN ('alice', 'svc_backup') GROUP BY Account"#,
    },
    Case {
        kql: r#"Events | where Account =~ "ALICE" and Device !~ "ws-01" | project Pid"#,
        sql: r#"SELECT Pid FROM Events WHERE ascii_lower(Account) = 'alice' AND ascii_lower(Device) <> 'ws-01'"#,
    },
    Case {
        kql: r#"Events | where Action startswith "proc" | project Pid, Action"#,
        sql: r#"SELECT Pid, Action FROM Events WHERE ascii_lower(Action) LIKE 'proc%'"#,
    },
    Case {
        kql: r#"Events | where Action startswith_cs "Proc" or Action endswith "FAILED" | project Pid"#,
        sql: r#"SELECT Pid FROM Events WHERE starts_with(Action, 'Proc') OR ascii_lower(Action) LIKE '%failed'"#,
    },
    Case {
        kql: r#"Events | where Action contains "conn" and Action !contains_cs "Failed" | project Pid"#,
        sql: r#"SELECT Pid FROM Events WHERE ascii_lower(Action) LIKE '%conn%' AND NOT contains(Action, 'Failed')"#,
    },
    Case {
        kql: r#"Events | where Bytes between (100 .. 900) and Port in (80, 443) | count"#,
        sql: r#"SELECT count(*) FROM Events WHERE Bytes BETWEEN 100 AND 900 AND Port IN (80, 443)"#,
    },
    Case {
        kql: r#"Events | where Timestamp between (datetime(2024-03-06 06:00) .. datetime(2024-03-06 12:00)) | summarize count() by Device"#,
        sql: r#"SELECT Device, count(*) FROM Events WHERE "Timestamp" BETWEEN TIMESTAMPTZ '2024-03-06 06:00:00+00' AND TIMESTAMPTZ '2024-03-06 12:00:00+00' GROUP BY Device"#,
    },
    Case {
        kql: r#"Events | where Admin | summarize count() by Account"#,
        sql: r#"SELECT Account, count(*) FROM Events WHERE Admin GROUP BY Account"#,
    },
    Case {
        kql: r#"Events | where not(Admin) or isnull(Bytes) | project Pid, Admin, Bytes"#,
        sql: r#"SELECT Pid, Admin, Bytes FROM Events WHERE NOT Admin OR Bytes IS NULL"#,
    },
    Case {
        kql: r#"Events | where Timestamp > ago(1d) and Score < 0 | project Pid, Score"#,
        sql: r#"SELECT Pid, Score FROM Events WHERE "Timestamp" > TIMESTAMPTZ '2024-03-06 00:00:00+00' AND Score < 0"#,
    },
    // Kusto's null rules (reference §2): `!=` between null and a value is true, and so is
    // `!in` of a null; SQL's `<>`/`NOT IN` give NULL there, hence IS DISTINCT FROM.
    Case {
        kql: "Events | where Bytes != 100 | count",
        sql: "SELECT count(*) FROM Events WHERE Bytes IS DISTINCT FROM 100",
    },
    Case {
        kql: "Events | where Bytes !in (100, 200, 300) | summarize count() by Device",
        sql: "SELECT Device, count(*) FROM Events WHERE Bytes IS NULL OR Bytes NOT IN (100, 200, 300) GROUP BY Device",
    },
    Case {
        kql: "Events | where not(Admin and Bytes > 2500) | project Pid",
        sql: "SELECT Pid FROM Events WHERE NOT (Admin AND Bytes > 2500)",
    },
    Case {
        kql: r#"Events | where Account startswith "A" and isnotempty(Device) | project Pid, Account"#,
        sql: "SELECT Pid, Account FROM Events WHERE ascii_lower(Account) LIKE 'a%' AND Device <> ''",
    },
    Case {
        kql: r#"Events | where Action matches regex "^[A-Z][a-z]+(Created|Failed)$" | project Pid, Action"#,
        sql: r#"SELECT Pid, Action FROM Events WHERE regexp_matches(Action, '^[A-Z][a-z]+(Created|Failed)$')"#,
    },
    Case {
        kql: "Events | where Timestamp between (datetime(2024-03-06) .. 6h) | project Pid",
        sql: r#"SELECT Pid FROM Events WHERE "Timestamp" BETWEEN TIMESTAMPTZ '2024-03-06 00:00:00+00' AND TIMESTAMPTZ '2024-03-06 06:00:00+00'"#,
    },
    Case {
        kql: "Events | where Score > -5.5 and Score <= 10 and Port + 0.5 > 100 | project Pid, Score",
        sql: "SELECT Pid, Score FROM Events WHERE Score > -5.5 AND Score <= 10 AND Port + 0.5 > 100",
    },
    // ---- summarize: count, sum, min, max, avg, dcount, countif, arg_max/arg_min, bin
    Case {
        kql: "Events | summarize count() by Device",
        sql: "SELECT Device, count(*) FROM Events GROUP BY Device",
    },
    Case {
        kql: "Events | summarize n = count(), total = sum(Bytes), lo = min(Bytes), hi = max(Bytes), mean = avg(Bytes) by Device, Action",
        sql: "SELECT Device, Action, count(*), coalesce(sum(Bytes), 0), min(Bytes), max(Bytes), avg(Bytes) FROM Events GROUP BY Device, Action",
    },
    Case {
        kql: "Events | summarize dcount(Account), dcount(Port), dcount(Bytes) by Device",
        sql: "SELECT Device, count(DISTINCT Account), count(DISTINCT Port), count(DISTINCT Bytes) FROM Events GROUP BY Device",
    },
    Case {
        kql: "Events | summarize sum(Score), avg(Score), min(Score), max(Score) by Admin",
        sql: "SELECT Admin, coalesce(sum(Score), 0), avg(Score), min(Score), max(Score) FROM Events GROUP BY Admin",
    },
    Case {
        kql: "Events | summarize count() by bin(Timestamp, 1h)",
        sql: r#"SELECT time_bucket(INTERVAL '1 hour', "Timestamp", TIMESTAMPTZ '1970-01-01 00:00:00+00'), count(*) FROM Events GROUP BY 1"#,
    },
    Case {
        kql: "Events | summarize count(), max(Timestamp), min(Account) by bin(Timestamp, 1d), Device",
        sql: r#"SELECT time_bucket(INTERVAL '1 day', "Timestamp", TIMESTAMPTZ '1970-01-01 00:00:00+00'), Device, count(*), max("Timestamp"), min(Account) FROM Events GROUP BY 1, 2"#,
    },
    Case {
        kql: "Events | summarize countif(Admin), countif(Bytes > 500), countif(Account =~ 'bob') by Device",
        sql: "SELECT Device, count(*) FILTER (WHERE Admin), count(*) FILTER (WHERE Bytes > 500), count(*) FILTER (WHERE ascii_lower(Account) = 'bob') FROM Events GROUP BY Device",
    },
    Case {
        kql: "Events | summarize arg_max(Pid, Account, Bytes) by Device",
        sql: "SELECT Device, max(Pid), arg_max_null(Account, Pid), arg_max_null(Bytes, Pid) FROM Events GROUP BY Device",
    },
    Case {
        kql: "Events | summarize arg_min(Timestamp, Pid) by Action",
        sql: r#"SELECT Action, min("Timestamp"), arg_min_null(Pid, "Timestamp") FROM Events GROUP BY Action"#,
    },
    Case {
        kql: "Events | summarize by Device, Admin | count",
        sql: "SELECT count(*) FROM (SELECT DISTINCT Device, Admin FROM Events)",
    },
    Case {
        kql: "Events | summarize Total = sum(Bytes) by Device | where Total > 100000 | project Device",
        sql: "SELECT Device FROM Events GROUP BY Device HAVING coalesce(sum(Bytes), 0) > 100000",
    },
    Case {
        kql: "Events | summarize dcountif(Account, Admin), sumif(Bytes, Admin), avgif(Score, Port == 443), minif(Bytes, Port == 22), maxif(Pid, not(Admin)) by Device",
        sql: "SELECT Device, count(DISTINCT Account) FILTER (WHERE Admin), coalesce(sum(Bytes) FILTER (WHERE Admin), 0), avg(Score) FILTER (WHERE Port = 443), min(Bytes) FILTER (WHERE Port = 22), max(Pid) FILTER (WHERE NOT Admin) FROM Events GROUP BY Device",
    },
    Case {
        kql: "Events | summarize sum(Port), avg(Port), stdev(Score), variance(Score) by Device",
        sql: "SELECT Device, sum(Port), avg(Port), stddev_samp(Score), var_samp(Score) FROM Events GROUP BY Device",
    },
    Case {
        kql: "Events | summarize arg_max(Timestamp, *) by Device",
        sql: r#"SELECT Device, max("Timestamp"), arg_max_null(Account, "Timestamp"), arg_max_null(Action, "Timestamp"), arg_max_null(Pid, "Timestamp"), arg_max_null(Bytes, "Timestamp"), arg_max_null(Score, "Timestamp"), arg_max_null(Admin, "Timestamp"), arg_max_null(Port, "Timestamp") FROM Events GROUP BY Device"#,
    },
    // Datetime bins are multiples of the size since 0001-01-01 (Kusto's tick zero), which
    // only coincides with the Unix epoch for sizes that divide a day: 5h and 7d bins
    // (Mondays) show the difference.
    Case {
        kql: "Events | summarize count() by bin(Timestamp, 5h)",
        sql: r#"SELECT time_bucket(INTERVAL '5 hours', "Timestamp", TIMESTAMPTZ '0001-01-01 00:00:00+00'), count(*) FROM Events GROUP BY 1"#,
    },
    Case {
        kql: "Events | summarize count() by bin(Timestamp, 7d), Device",
        sql: r#"SELECT time_bucket(INTERVAL '7 days', "Timestamp", TIMESTAMPTZ '0001-01-01 00:00:00+00'), Device, count(*) FROM Events GROUP BY 1, 2"#,
    },
    Case {
        kql: "Events | summarize count() by bin_at(Timestamp, 1h, datetime(2024-03-06 00:30))",
        sql: r#"SELECT time_bucket(INTERVAL '1 hour', "Timestamp", TIMESTAMPTZ '2024-03-06 00:30:00+00'), count(*) FROM Events GROUP BY 1"#,
    },
    Case {
        kql: "Events | summarize count() by bin(Bytes, 1000), bin(Score, 2.5)",
        sql: "SELECT Bytes // 1000 * 1000, floor(Score / 2.5) * 2.5, count(*) FROM Events GROUP BY 1, 2",
    },
    Case {
        kql: "Events | summarize count() by startofmonth(Timestamp), getyear(Timestamp), getmonth(Timestamp), dayofmonth(Timestamp)",
        sql: r#"SELECT date_trunc('month', "Timestamp"), year("Timestamp"), month("Timestamp"), day("Timestamp"), count(*) FROM Events GROUP BY 1, 2, 3, 4"#,
    },
    // ---- sort, top, take with a full ordering; distinct
    Case {
        kql: "Events | top 10 by Pid desc | project Pid, Device",
        sql: "SELECT Pid, Device FROM Events ORDER BY Pid DESC LIMIT 10",
    },
    Case {
        kql: "Events | sort by Bytes asc, Pid asc | take 15 | project Pid, Bytes",
        sql: "SELECT Pid, Bytes FROM Events ORDER BY Bytes ASC NULLS FIRST, Pid ASC LIMIT 15",
    },
    Case {
        kql: "Events | sort by Score desc, Pid desc | take 12 | project Pid, Score",
        sql: "SELECT Pid, Score FROM Events ORDER BY Score DESC NULLS LAST, Pid DESC LIMIT 12",
    },
    Case {
        kql: "Events | top 5 by Timestamp asc | project Timestamp, Pid",
        sql: r#"SELECT "Timestamp", Pid FROM Events ORDER BY "Timestamp" ASC LIMIT 5"#,
    },
    Case {
        kql: "Events | distinct Device, Action",
        sql: "SELECT DISTINCT Device, Action FROM Events",
    },
    Case {
        kql: "Events | sort by Score asc, Pid asc | take 70 | project Pid, Score",
        sql: "SELECT Pid, Score FROM Events ORDER BY Score ASC NULLS FIRST, Pid ASC LIMIT 70",
    },
    Case {
        kql: "Events | sort by Account asc, Pid desc | take 40 | project Account, Pid",
        sql: "SELECT Account, Pid FROM Events ORDER BY Account ASC, Pid DESC LIMIT 40",
    },
    Case {
        kql: "Events | distinct Account | count",
        sql: "SELECT count(DISTINCT Account) FROM Events",
    },
    // ---- scalar expressions with the same meaning in both
    Case {
        kql: "Events | extend kb = Bytes / 1024, m = Pid % 7 | project Pid, kb, m",
        sql: "SELECT Pid, Bytes // 1024, Pid % 7 FROM Events",
    },
    Case {
        kql: r#"Events | extend s = strcat(Device, "/", Account), l = strlen(Account), u = toupper(Action) | project Pid, s, l, u"#,
        sql: "SELECT Pid, concat(Device, '/', Account), length(Account), upper(Action) FROM Events",
    },
    Case {
        kql: r#"Events | extend size = iff(Bytes > 1000, "big", "small") | summarize count() by size"#,
        sql: "SELECT CASE WHEN Bytes > 1000 THEN 'big' ELSE 'small' END AS size, count(*) FROM Events GROUP BY size",
    },
    Case {
        kql: "Events | extend later = Timestamp + 90m, h = hourofday(Timestamp) | project Pid, later, h",
        sql: r#"SELECT Pid, "Timestamp" + INTERVAL 90 MINUTE, hour("Timestamp") FROM Events"#,
    },
    Case {
        kql: "Events | extend q = (Pid - 50000) / 7, r = (Pid - 50000) % 7, z = Pid / (Port - 22), f = Score * 4 % 7 | project Pid, q, r, z, f",
        sql: "SELECT Pid, (Pid - 50000) // 7, (Pid - 50000) % 7, TRY(Pid // (Port - 22)), Score * 4 % 7 FROM Events",
    },
    Case {
        kql: r#"Events | extend t = tostring(Bytes), c = strcat(Device, Bytes), sub = substring(Account, 1, 3), low = tolower(Account), rep = replace_string(Account, "a", "4"), i = indexof(Account, "b") | project Pid, t, c, sub, low, rep, i"#,
        sql: "SELECT Pid, coalesce(CAST(Bytes AS VARCHAR), ''), concat(Device, Bytes), substr(Account, 2, 3), lower(Account), replace(Account, 'a', '4'), strpos(Account, 'b') - 1 FROM Events",
    },
    Case {
        kql: r#"Events | extend n = extract("([a-z]+)-([0-9]+)", 2, Device), k = case(Bytes < 100, "s", Bytes < 1000, "m", "l"), m = max_of(Bytes, 2500), c = coalesce(Bytes, Pid) | project Pid, n, k, m, c"#,
        sql: "SELECT Pid, regexp_extract(Device, '([a-z]+)-([0-9]+)', 2), CASE WHEN Bytes < 100 THEN 's' WHEN Bytes < 1000 THEN 'm' ELSE 'l' END, greatest(Bytes, 2500), coalesce(Bytes, Pid) FROM Events",
    },
    Case {
        kql: r#"Events | extend a = datetime_add("hour", 2, Timestamp), mi = datetime_part("minute", Timestamp), l = tolong(tostring(Port)) | project Pid, a, mi, l"#,
        sql: r#"SELECT Pid, "Timestamp" + INTERVAL 2 HOUR, minute("Timestamp"), Port FROM Events"#,
    },
    Case {
        kql: "Events | top 20 by Pid asc | top 5 by Pid desc | extend a = Pid * 2, b = a + 1 | project Pid, b",
        sql: "SELECT Pid, Pid * 2 + 1 FROM (SELECT Pid FROM Events ORDER BY Pid ASC LIMIT 20) ORDER BY Pid DESC LIMIT 5",
    },
    Case {
        kql: "Events | summarize pct = 100.0 * countif(Admin) / count(), d = dcount(strcat(Account, Action)) by dev = tolower(Device)",
        sql: "SELECT lower(Device), 100.0 * count(*) FILTER (WHERE Admin) / count(*), count(DISTINCT concat(Account, Action)) FROM Events GROUP BY 1",
    },
    // ---- joins: inner, leftouter, rightouter, fullouter, leftsemi, leftanti
    Case {
        kql: "Events | join kind=inner Devices on Device | project Pid, Device, Owner, Tier",
        sql: "SELECT e.Pid, e.Device, d.Owner, d.Tier FROM Events e JOIN Devices d ON e.Device = d.Device",
    },
    Case {
        kql: "Events | join kind=leftouter Devices on Device | project Pid, Owner, Tier",
        sql: "SELECT e.Pid, coalesce(d.Owner, ''), d.Tier FROM Events e LEFT JOIN Devices d ON e.Device = d.Device",
    },
    Case {
        kql: "Events | where Pid < 5000 | join kind=rightouter Devices on Device | project Pid, Device, Device1, Owner",
        sql: "SELECT e.Pid, coalesce(e.Device, ''), d.Device, d.Owner FROM (SELECT * FROM Events WHERE Pid < 5000) e RIGHT JOIN Devices d ON e.Device = d.Device",
    },
    Case {
        kql: "Events | where Pid < 5000 | join kind=fullouter Devices on Device | project Pid, Device, Device1, Tier",
        sql: "SELECT e.Pid, coalesce(e.Device, ''), coalesce(d.Device, ''), d.Tier FROM (SELECT * FROM Events WHERE Pid < 5000) e FULL JOIN Devices d ON e.Device = d.Device",
    },
    Case {
        kql: "Events | join kind=leftsemi Devices on Device | project Pid",
        sql: "SELECT Pid FROM Events e WHERE EXISTS (SELECT 1 FROM Devices d WHERE d.Device = e.Device)",
    },
    Case {
        kql: "Events | join kind=leftanti (Devices | where isnotnull(Tier)) on Device | project Pid",
        sql: "SELECT Pid FROM Events e WHERE NOT EXISTS (SELECT 1 FROM Devices d WHERE d.Device = e.Device AND d.Tier IS NOT NULL)",
    },
    Case {
        kql: "Devices | join kind=inner (Events | summarize n = count() by Device) on Device | project Device, Owner, n",
        sql: "SELECT d.Device, d.Owner, s.n FROM Devices d JOIN (SELECT Device, count(*) AS n FROM Events GROUP BY Device) s ON d.Device = s.Device",
    },
    Case {
        kql: r#"union (Events | where Device == "ws-01"), (Events | where Port == 443) | summarize count() by Action"#,
        sql: "SELECT Action, count(*) FROM (SELECT * FROM Events WHERE Device = 'ws-01' UNION ALL SELECT * FROM Events WHERE Port = 443) GROUP BY Action",
    },
    Case {
        kql: r#"Events | where Action == "LogonFailed" | join kind=inner (Events | where Action == "ProcessCreated") on Device, Account | project Pid, Pid1"#,
        sql: "SELECT a.Pid, b.Pid FROM Events a JOIN Events b ON a.Device = b.Device AND a.Account = b.Account WHERE a.Action = 'LogonFailed' AND b.Action = 'ProcessCreated'",
    },
    Case {
        kql: "Devices | join kind=leftouter (Events | summarize n = count() by Device) on Device | project Device, Owner, n",
        sql: "SELECT d.Device, d.Owner, s.n FROM Devices d LEFT JOIN (SELECT Device, count(*) AS n FROM Events GROUP BY Device) s ON d.Device = s.Device",
    },
    Case {
        kql: "Events | join kind=rightsemi Devices on Device | project Device, Owner",
        sql: "SELECT Device, Owner FROM Devices d WHERE EXISTS (SELECT 1 FROM Events e WHERE e.Device = d.Device)",
    },
    Case {
        kql: "Events | join kind=rightanti Devices on Device | project Device, Owner",
        sql: "SELECT Device, Owner FROM Devices d WHERE NOT EXISTS (SELECT 1 FROM Events e WHERE e.Device = d.Device)",
    },
    Case {
        kql: r#"Events | join kind=inner (datatable(Port:long, Service:string)[443, "https", 22, "ssh", 80, "http", 80, "www"]) on Port | summarize count() by Service"#,
        sql: "SELECT s.Service, count(*) FROM Events e JOIN (VALUES (443, 'https'), (22, 'ssh'), (80, 'http'), (80, 'www')) s(Port, Service) ON e.Port = s.Port GROUP BY s.Service",
    },
    // An outer union: a leg without a column gets "" for strings, null otherwise.
    Case {
        kql: "union Events, Devices | summarize count(), sum(Tier), dcount(Pid) by Device, Owner",
        sql: "SELECT Device, Owner, count(*), coalesce(sum(Tier), 0), count(DISTINCT Pid) FROM (SELECT Device, '' AS Owner, NULL::BIGINT AS Tier, Pid FROM Events UNION ALL SELECT Device, Owner, Tier, NULL FROM Devices) GROUP BY Device, Owner",
    },
    // ---- the hunting tables of hunt_data
    Case {
        kql: r#"DeviceProcessEvents | where FileName in~ ("cmd.exe", "powershell.exe") | summarize count() by DeviceName, AccountName"#,
        sql: "SELECT DeviceName, AccountName, count(*) FROM DeviceProcessEvents WHERE ascii_lower(FileName) IN ('cmd.exe', 'powershell.exe') GROUP BY DeviceName, AccountName",
    },
    Case {
        kql: "DeviceNetworkEvents | where RemotePort in (80, 443) | summarize dcount(RemoteIP), count() by DeviceName",
        sql: "SELECT DeviceName, count(DISTINCT RemoteIP), count(*) FROM DeviceNetworkEvents WHERE RemotePort IN (80, 443) GROUP BY DeviceName",
    },
    Case {
        kql: r#"DeviceProcessEvents | join kind=inner (DeviceNetworkEvents) on DeviceId, $left.ProcessId == $right.InitiatingProcessId | project FileName, RemoteIP, RemotePort"#,
        sql: "SELECT p.FileName, n.RemoteIP, n.RemotePort FROM DeviceProcessEvents p JOIN DeviceNetworkEvents n ON p.DeviceId = n.DeviceId AND p.ProcessId = n.InitiatingProcessId",
    },
    Case {
        kql: "DeviceProcessEvents | summarize count(), sum(FileSize), max(Timestamp) by bin(Timestamp, 1h)",
        sql: r#"SELECT time_bucket(INTERVAL '1 hour', "Timestamp", TIMESTAMPTZ '1970-01-01 00:00:00+00'), count(*), coalesce(sum(FileSize), 0), max("Timestamp") FROM DeviceProcessEvents GROUP BY 1"#,
    },
    Case {
        kql: r#"DeviceInfo | join kind=leftouter (DeviceLogonEvents | where ActionType == "LogonSuccess") on DeviceId | project DeviceName, AccountName, IsLocalAdmin"#,
        sql: "SELECT i.DeviceName, coalesce(l.AccountName, ''), l.IsLocalAdmin FROM DeviceInfo i LEFT JOIN (SELECT * FROM DeviceLogonEvents WHERE ActionType = 'LogonSuccess') l ON i.DeviceId = l.DeviceId",
    },
    Case {
        kql: r#"DeviceLogonEvents | where ActionType == "LogonFailed" and Timestamp > ago(12h) | summarize Failures = count(), First = min(Timestamp) by RemoteIP, AccountName"#,
        sql: r#"SELECT RemoteIP, AccountName, count(*), min("Timestamp") FROM DeviceLogonEvents WHERE ActionType = 'LogonFailed' AND "Timestamp" > TIMESTAMPTZ '2024-03-06 12:00:00+00' GROUP BY RemoteIP, AccountName"#,
    },
    Case {
        kql: "DeviceFileEvents | summarize count() by startofday(Timestamp), ActionType",
        sql: r#"SELECT date_trunc('day', "Timestamp"), ActionType, count(*) FROM DeviceFileEvents GROUP BY 1, 2"#,
    },
];

/// A cell in a form both engines' results reduce to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Cell {
    Null,
    Bool(bool),
    /// A number with ten significant digits: integers and floats compare by value, and
    /// summation order does not matter.
    Number(String),
    Text(String),
    /// Nanoseconds since the epoch.
    Time(i64),
}

fn number(value: f64) -> Cell {
    if value == 0.0 {
        // -0.0 and 0.0 are the same result.
        return Cell::Number("0".to_string());
    }
    Cell::Number(format!("{value:.9e}"))
}

// ---- the dataset --------------------------------------------------------------------

/// Deterministic pseudo-random numbers (a 64-bit LCG; the high bits are used).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

/// 2024-03-05T18:00:00Z in nanoseconds.
const START: i64 = 1_709_661_600 * 1_000_000_000;

/// `Events`: 600 rows over 20 hours, with mixed-case (and non-ASCII) strings, empty
/// strings, and nulls in the numeric and bool columns. `Pid` and `Timestamp` are unique.
fn events() -> RecordBatch {
    const DEVICES: &[&str] = &["ws-01", "ws-02", "ws-03", "srv-01", "srv-02", "", "WS-01"];
    const ACCOUNTS: &[&str] = &[
        "alice",
        "Alice",
        "ALICE",
        "bob",
        "Bob",
        "svc_backup",
        "admin",
        "",
        "élodie",
        "ÉLODIE",
    ];
    const ACTIONS: &[&str] = &[
        "ProcessCreated",
        "processcreated",
        "ConnectionSuccess",
        "ConnectionFailed",
        "FileCreated",
        "LogonFailed",
    ];
    const PORTS: &[i32] = &[22, 80, 443, 445, 3389, 8080];
    let pick = |rng: &mut Lcg, list: &[&'static str]| list[rng.next(list.len() as u64) as usize];
    let mut rng = Lcg(0x5eed);
    let (mut ts, mut device, mut account, mut action) = (vec![], vec![], vec![], vec![]);
    let (mut pid, mut bytes, mut score, mut admin, mut port) =
        (vec![], vec![], vec![], vec![], vec![]);
    for i in 0..600i64 {
        // One row per two-minute slot, at a random second in it: unique and increasing.
        ts.push(START + (i * 120 + rng.next(119) as i64) * 1_000_000_000);
        device.push(pick(&mut rng, DEVICES));
        account.push(pick(&mut rng, ACCOUNTS));
        action.push(pick(&mut rng, ACTIONS));
        // 7919 is coprime with the prime 100003: unique for i < 100003.
        pid.push((i * 7919) % 100_003);
        bytes.push((rng.next(7) != 0).then(|| rng.next(5000) as i64));
        // Quarters keep sums exact in binary floating point.
        score.push((rng.next(10) != 0).then(|| rng.next(400) as f64 * 0.25 - 20.0));
        admin.push(match rng.next(5) {
            0 => None,
            1 | 2 => Some(true),
            _ => Some(false),
        });
        port.push(PORTS[rng.next(PORTS.len() as u64) as usize]);
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("Timestamp", timestamp_type(), false),
        Field::new("Device", DataType::Utf8, false),
        Field::new("Account", DataType::Utf8, false),
        Field::new("Action", DataType::Utf8, false),
        Field::new("Pid", DataType::Int64, false),
        Field::new("Bytes", DataType::Int64, true),
        Field::new("Score", DataType::Float64, true),
        Field::new("Admin", DataType::Boolean, true),
        Field::new("Port", DataType::Int32, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampNanosecondArray::from(ts).with_timezone("UTC")),
        Arc::new(StringArray::from(device)),
        Arc::new(StringArray::from(account)),
        Arc::new(StringArray::from(action)),
        Arc::new(Int64Array::from(pid)),
        Arc::new(Int64Array::from(bytes)),
        Arc::new(Float64Array::from(score)),
        Arc::new(BooleanArray::from(admin)),
        Arc::new(Int32Array::from(port)),
    ];
    RecordBatch::try_new(schema, columns).expect("Events batch")
}

/// `Devices`: a lookup table with a duplicate key (joins multiply), a key no event has,
/// the empty device name, and null tiers.
fn devices() -> RecordBatch {
    let rows: &[(&str, &str, Option<i64>)] = &[
        ("ws-01", "alice", Some(1)),
        ("ws-01", "it", Some(2)),
        ("ws-02", "bob", None),
        ("srv-01", "ops", Some(3)),
        ("db-01", "dba", Some(4)),
        ("", "nobody", None),
    ];
    let schema = Arc::new(Schema::new(vec![
        Field::new("Device", DataType::Utf8, false),
        Field::new("Owner", DataType::Utf8, false),
        Field::new("Tier", DataType::Int64, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.2))),
    ];
    RecordBatch::try_new(schema, columns).expect("Devices batch")
}

fn timestamp_type() -> DataType {
    DataType::Timestamp(
        datafusion::arrow::datatypes::TimeUnit::Nanosecond,
        Some("UTC".into()),
    )
}

/// A hunting table's rows with KQL's view of strings: a missing string is "". Both
/// engines then read the same values, and SQL needs no `coalesce` on scans.
fn kql_strings(batch: &RecordBatch) -> RecordBatch {
    let schema = batch.schema();
    let columns = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, column)| {
            let is_string = field.metadata().get("kql_type").map(String::as_str) == Some("string");
            if is_string && column.data_type() == &DataType::Utf8 && column.null_count() > 0 {
                let text = column.as_string::<i32>();
                let filled: StringArray = (0..text.len())
                    .map(|i| Some(if text.is_null(i) { "" } else { text.value(i) }))
                    .collect();
                Arc::new(filled) as ArrayRef
            } else {
                column.clone()
            }
        })
        .collect();
    RecordBatch::try_new(schema, columns).expect("same schema")
}

const HUNTING_TABLES: &[&str] = &[
    "DeviceProcessEvents",
    "DeviceNetworkEvents",
    "DeviceLogonEvents",
    "DeviceFileEvents",
    "DeviceInfo",
];

/// Every table of the comparison: name, schema, rows.
async fn dataset() -> Vec<(String, SchemaRef, Vec<RecordBatch>)> {
    let hunting = hunt_data::context();
    let mut tables = Vec::new();
    for name in HUNTING_TABLES {
        let frame = hunting
            .table(TableReference::bare(*name))
            .await
            .expect("hunting table");
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await.expect("hunting rows");
        let batches: Vec<RecordBatch> = batches.iter().map(kql_strings).collect();
        tables.push((name.to_string(), schema, batches));
    }
    for (name, batch) in [("Events", events()), ("Devices", devices())] {
        tables.push((name.to_string(), batch.schema(), vec![batch]));
    }
    tables
}

// ---- the two engines ----------------------------------------------------------------

/// A directory of its own under the system temp directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "rampart-kql-differential-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        ));
        std::fs::create_dir_all(&path).expect("create the temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write_parquet(path: &Path, schema: &SchemaRef, batches: &[RecordBatch]) {
    let file = std::fs::File::create(path).expect("create the parquet file");
    let mut writer = ArrowWriter::try_new(file, schema.clone(), None).expect("parquet writer");
    for batch in batches {
        writer.write(batch).expect("write parquet");
    }
    writer.close().expect("close parquet");
}

/// Runs every query in one DuckDB session over views of the Parquet files. Each result
/// is rows of JSON cells (`{"t": ns}` for timestamps), or an error message.
const DUCKDB_SCRIPT: &str = r#"
import datetime, decimal, json, math, sys
import duckdb

request = json.load(sys.stdin)
con = duckdb.connect()
try:
    con.execute("SET TimeZone = 'UTC'")
except Exception:
    pass
# Kusto folds case for =~, in~, startswith, contains... on ASCII letters only (reference
# §2 "Case"); DuckDB's lower() and ILIKE fold all of Unicode.
con.execute("CREATE MACRO ascii_lower(s) AS translate(s, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')")
for name, path in request["tables"].items():
    con.execute("CREATE VIEW \"%s\" AS SELECT * FROM read_parquet('%s')" % (name, path.replace("'", "''")))
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)

def cell(v):
    if v is None or isinstance(v, (bool, str, int)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else {"f": str(v)}
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, datetime.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=datetime.timezone.utc)
        d = v - EPOCH
        return {"t": (d.days * 86400 + d.seconds) * 10**9 + d.microseconds * 1000}
    if isinstance(v, datetime.date):
        return cell(datetime.datetime(v.year, v.month, v.day))
    return {"other": repr(v)}

out = []
for sql in request["queries"]:
    try:
        out.append({"rows": [[cell(c) for c in row] for row in con.execute(sql).fetchall()]})
    except Exception as e:
        out.append({"error": str(e)})
json.dump(out, sys.stdout)
"#;

fn duckdb_available() -> bool {
    Command::new("python3")
        .args(["-c", "import duckdb"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run_duckdb(
    tables: &[(String, PathBuf)],
    queries: &[&str],
) -> Vec<Result<Vec<Vec<Cell>>, String>> {
    let request = serde_json::json!({
        "tables": tables
            .iter()
            .map(|(name, path)| (name.clone(), serde_json::Value::from(path.display().to_string())))
            .collect::<serde_json::Map<_, _>>(),
        "queries": queries,
    });
    let mut child = Command::new("python3")
        .args(["-c", DUCKDB_SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.to_string().as_bytes())
        .expect("send the queries to DuckDB");
    let output = child.wait_with_output().expect("DuckDB finishes");
    assert!(
        output.status.success(),
        "the DuckDB script failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<serde_json::Value> =
        serde_json::from_slice(&output.stdout).expect("DuckDB results are JSON");
    results
        .into_iter()
        .map(|result| {
            if let Some(error) = result.get("error") {
                return Err(error.to_string());
            }
            let rows = result
                .get("rows")
                .and_then(|r| r.as_array())
                .ok_or("no rows")?;
            Ok(rows
                .iter()
                .map(|row| {
                    row.as_array()
                        .map(|cells| cells.iter().map(json_cell).collect())
                        .unwrap_or_default()
                })
                .collect())
        })
        .collect()
}

fn json_cell(value: &serde_json::Value) -> Cell {
    use serde_json::Value;
    match value {
        Value::Null => Cell::Null,
        Value::Bool(b) => Cell::Bool(*b),
        Value::Number(n) => number(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Cell::Text(s.clone()),
        Value::Object(o) => match (o.get("t").and_then(Value::as_i64), o.get("f")) {
            (Some(t), _) => Cell::Time(t),
            (None, Some(Value::String(f))) => Cell::Number(f.clone()),
            _ => Cell::Text(format!("unexpected DuckDB value {value}")),
        },
        Value::Array(_) => Cell::Text(format!("unexpected DuckDB value {value}")),
    }
}

fn kql_cell(array: &dyn Array, row: usize) -> Cell {
    if array.is_null(row) {
        return Cell::Null;
    }
    match array.data_type() {
        DataType::Boolean => Cell::Bool(array.as_boolean().value(row)),
        DataType::Int32 => number(f64::from(array.as_primitive::<Int32Type>().value(row))),
        DataType::Int64 => number(array.as_primitive::<Int64Type>().value(row) as f64),
        DataType::UInt64 => number(array.as_primitive::<UInt64Type>().value(row) as f64),
        DataType::Float64 => number(array.as_primitive::<Float64Type>().value(row)),
        DataType::Utf8 => Cell::Text(array.as_string::<i32>().value(row).to_string()),
        DataType::Timestamp(..) => {
            Cell::Time(array.as_primitive::<TimestampNanosecondType>().value(row))
        }
        other => Cell::Text(format!("unexpected KQL result type {other}")),
    }
}

fn kql_rows(result: &HuntResult) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    for batch in &result.batches {
        for row in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .map(|c| kql_cell(c.as_ref(), row))
                    .collect(),
            );
        }
    }
    rows
}

#[tokio::test]
async fn kql_agrees_with_duckdb() {
    if !duckdb_available() {
        if std::env::var("RAMPART_SKIP_DUCKDB").as_deref() == Ok("1") {
            eprintln!("skipping the DuckDB differential tests: RAMPART_SKIP_DUCKDB=1");
            return;
        }
        panic!(
            "the differential tests need DuckDB for Python: run `python3 -m pip install duckdb` \
             (or set RAMPART_SKIP_DUCKDB=1 to skip them)"
        );
    }
    let tables = dataset().await;
    let dir = TempDir::new();
    let ctx = SessionContext::new();
    let mut files = Vec::new();
    for (name, schema, batches) in &tables {
        let path = dir.0.join(format!("{name}.parquet"));
        write_parquet(&path, schema, batches);
        files.push((name.clone(), path));
        let table = MemTable::try_new(schema.clone(), vec![batches.clone()]).expect("memtable");
        // Bare: a plain string would be parsed as SQL and lowercased.
        ctx.register_table(TableReference::bare(name.as_str()), Arc::new(table))
            .expect("register");
    }
    let sql: Vec<&str> = CASES.iter().map(|c| c.sql).collect();
    let expected = run_duckdb(&files, &sql);

    let mut failures = Vec::new();
    for (case, expected) in CASES.iter().zip(expected) {
        let expected = match expected {
            Ok(rows) => rows,
            Err(error) => {
                failures.push(format!("DuckDB failed on\n  {}\n  {error}", case.sql));
                continue;
            }
        };
        let text = format!("{QUERY_NOW}{}", case.kql);
        let actual = match rampart_kql::run(
            &ctx,
            &text,
            &QueryParameters::new(),
            &Limits::default(),
        )
        .await
        {
            Ok(result) => kql_rows(&result),
            Err(error) => {
                failures.push(format!("KQL failed on\n  {}\n  {error}", case.kql));
                continue;
            }
        };
        let (mut actual, mut expected) = (actual, expected);
        actual.sort();
        expected.sort();
        if actual != expected {
            let only_kql: Vec<_> = actual
                .iter()
                .filter(|r| !expected.contains(r))
                .take(5)
                .collect();
            let only_sql: Vec<_> = expected
                .iter()
                .filter(|r| !actual.contains(r))
                .take(5)
                .collect();
            failures.push(format!(
                "results differ for\n  {}\n  {}\n  {} rows from KQL, {} from DuckDB\n  only in KQL: {only_kql:?}\n  only in DuckDB: {only_sql:?}",
                case.kql,
                case.sql,
                actual.len(),
                expected.len()
            ));
        } else if actual.is_empty() {
            // An empty result proves little: every case must select something.
            failures.push(format!("no rows from either engine for\n  {}", case.kql));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} differential cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n\n")
    );
}
