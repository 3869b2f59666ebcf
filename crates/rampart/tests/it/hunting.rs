//! Advanced hunting end to end: telemetry imported over HTTP, then hunted through both API
//! routes and with `rampart hunt`, tenant by tenant.

use crate::harness::{Server, assert_mde_error, backends};
use serde_json::{Value, json};

fn ts(offset_s: i64) -> String {
    let t = time::OffsetDateTime::now_utc() - time::Duration::hours(1)
        + time::Duration::seconds(offset_s);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

async fn post(s: &Server, path: &str, token: &str, body: Value) -> (u16, Value) {
    s.post(path, token, body).await
}

/// Three process events on two devices in the server's default tenant.
async fn import_processes(s: &Server) {
    let token = s.token_with("Event.Write").await;
    let rows = [
        json!({"Timestamp": ts(0), "DeviceId": "a".repeat(40), "DeviceName": "ws-1", "ActionType": "ProcessCreated", "FileName": "powershell.exe", "ProcessCommandLine": "powershell -enc SQBFAFgA", "ReportId": 1}),
        json!({"Timestamp": ts(1), "DeviceId": "a".repeat(40), "DeviceName": "ws-1", "ActionType": "ProcessCreated", "FileName": "cmd.exe", "ProcessCommandLine": "cmd /c whoami", "ReportId": 2}),
        json!({"Timestamp": ts(2), "DeviceId": "b".repeat(40), "DeviceName": "ws-2", "ActionType": "ProcessCreated", "FileName": "powershell.exe", "ProcessCommandLine": "powershell Get-Process", "ReportId": 3}),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n");
    let resp = s
        .http
        .post(format!(
            "{}/api/telemetry/import?table=DeviceProcessEvents",
            s.url
        ))
        .bearer_auth(&token)
        .header("content-type", "application/x-ndjson")
        .body(rows)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

const QUERY: &str = "DeviceProcessEvents
| where FileName =~ 'POWERSHELL.EXE'
| summarize count() by DeviceName
| order by DeviceName asc";

#[tokio::test]
async fn hunting_runs_kql_over_the_callers_tenant_in_mde_shapes() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        import_processes(&s).await;
        let mde = s.token_with("AdvancedQuery.Read.All").await;
        let xdr = s.token_with("AdvancedHunting.Read.All").await;
        for (path, token) in [
            ("/api/advancedqueries/run", &mde),
            ("/api/advancedhunting/run", &xdr),
        ] {
            let (st, v) = post(&s, path, token, json!({ "Query": QUERY })).await;
            assert_eq!(st, 200, "{}: {path}: {v}", b.name);
            assert_eq!(
                v["Schema"],
                json!([{"Name": "DeviceName", "Type": "String"}, {"Name": "count_", "Type": "Int64"}]),
                "{}",
                b.name
            );
            assert_eq!(
                v["Results"],
                json!([{"DeviceName": "ws-1", "count_": 1}, {"DeviceName": "ws-2", "count_": 1}]),
                "{}",
                b.name
            );
            assert!(v["Stats"]["ExecutionTime"].is_number(), "{v}");
        }

        // Datetimes come back as Kusto writes them.
        let (st, v) = post(
            &s,
            "/api/advancedhunting/run",
            &xdr,
            json!({ "Query": "DeviceProcessEvents | where ReportId == 2 | project Timestamp, ReportId" }),
        )
        .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["Schema"][0]["Type"], "DateTime");
        let t = v["Results"][0]["Timestamp"].as_str().unwrap();
        assert!(t.ends_with('Z') && t.len() == 28, "{t}");

        // A query error is an MDE 400 that names where and what.
        let (st, v) = post(
            &s,
            "/api/advancedhunting/run",
            &xdr,
            json!({ "Query": "DeviceProcessEvents\n| where ProcessCmd has 'x'" }),
        )
        .await;
        assert_eq!(st, 400, "{v}");
        let message = assert_mde_error(&v, "BadRequest");
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains("ProcessCommandLine"), "{message}");

        let (st, v) = post(&s, "/api/advancedhunting/run", &xdr, json!({})).await;
        assert_eq!(st, 400, "{v}");
        assert_mde_error(&v, "MissingRequiredParameter");

        // Each route wants its own permission.
        let (st, v) = post(
            &s,
            "/api/advancedqueries/run",
            &xdr,
            json!({ "Query": QUERY }),
        )
        .await;
        assert_eq!(st, 403, "{v}");

        // Another tenant sees none of these rows.
        let other = b.create_tenant("Other");
        let foreign = s
            .token(&b.create_app(Some(&other), "AdvancedHunting.Read.All"))
            .await;
        let (st, v) = post(
            &s,
            "/api/advancedhunting/run",
            &foreign,
            json!({ "Query": QUERY }),
        )
        .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["Results"], json!([]), "{}", b.name);
    }
}

#[tokio::test]
async fn the_hunt_command_checks_runs_and_formats() {
    let dir = tempfile::tempdir().unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_with(&b, &["--no-rate-limits"]);
        import_processes(&s).await;
        // Through the running server, with an app's credentials.
        let app = b.create_app(None, "AdvancedHunting.Read.All");
        let out = b.cli(
            &[
                &["hunt", QUERY, "--format", "csv"][..],
                &app.remote_args(&s.url),
            ]
            .concat(),
        );
        assert_eq!(out, "DeviceName,count_\nws-1,1\nws-2,1\n", "{}", b.name);
        drop(s);

        // On the data dir, once the server is gone.
        let out = b.cli(&["hunt", QUERY, "--format", "ndjson"]);
        assert_eq!(
            out, "{\"DeviceName\":\"ws-1\",\"count_\":1}\n{\"DeviceName\":\"ws-2\",\"count_\":1}\n",
            "{}",
            b.name
        );
        assert_eq!(b.cli(&["hunt", "--check", QUERY]), "ok\n");

        // The prompt: a query ends at an empty line, errors do not end the session, `:1` runs
        // the first query again, and the history outlives the session.
        let home = tempfile::tempdir().unwrap();
        let prompt = |input: &str| {
            use std::io::Write;
            let mut child = std::process::Command::new(crate::harness::BIN)
                .args(["--data-dir", b.data_dir.to_str().unwrap()])
                .args(["--database-url", &b.database_url])
                .args(["hunt", "--interactive", "--format", "csv"])
                .env("HOME", home.path())
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            (
                String::from_utf8(out.stdout).unwrap(),
                String::from_utf8(out.stderr).unwrap(),
            )
        };
        let (out, err) =
            prompt("DeviceProcessEvents\n| count\n\nDeviceProcesEvents | take 1\n\n:1\n:quit\n");
        assert_eq!(out, "Count\n3\nCount\n3\n", "{}: {err}", b.name);
        assert!(err.contains("DeviceProcessEvents"), "{err}");
        let (out, err) = prompt(":history\n:2\n");
        assert!(err.contains("   1  DeviceProcessEvents"), "{err}");
        assert!(err.contains("   2  DeviceProcesEvents | take 1"), "{err}");
        assert_eq!(out, "", "{err}");
        let (out, _) = prompt(":1\n");
        assert_eq!(out, "Count\n3\n");
        let bad = b.cli_raw(&["hunt", "--check", "DeviceProcesEvents | take 1"]);
        assert!(!bad.status.success());
        let err = String::from_utf8_lossy(&bad.stderr);
        assert!(err.contains("DeviceProcessEvents"), "{err}");
    }
}

#[tokio::test]
async fn hunting_limits_are_configurable_per_server() {
    let dir = tempfile::tempdir().unwrap();
    let tight = dir.path().join("tight.toml");
    let feed = dir.path().join("feed.csv");
    std::fs::write(&feed, "3395856ce81f2b7382dee72602f798b642f14140,bad.exe\nffff856ce81f2b7382dee72602f798b642f1ffff,worse.exe\n").unwrap();
    std::fs::write(
        &tight,
        format!(
            "[api.hunting]\nmax_rows = 2\nlookback_days = 1\n[api.hunting.external_data]\n\"https://feeds.example/bad.csv\" = {:?}\n",
            feed.to_str().unwrap()
        ),
    )
    .unwrap();
    let spent = dir.path().join("spent.toml");
    std::fs::write(&spent, "[api.hunting]\ntenant_seconds_per_window = 0\n").unwrap();
    for b in backends(dir.path()) {
        let s = Server::start_opts(
            &b,
            &["--config", tight.to_str().unwrap()],
            &["--no-rate-limits"],
        );
        import_processes(&s).await;
        // One more row, two days old: outside the one-day window.
        let token = s.token_with("Event.Write").await;
        let old = (time::OffsetDateTime::now_utc() - time::Duration::days(2))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let row = json!({"Timestamp": old, "DeviceId": "c".repeat(40), "DeviceName": "ws-3", "FileName": "old.exe", "ReportId": 9});
        let resp = s
            .http
            .post(format!(
                "{}/api/telemetry/import?table=DeviceProcessEvents",
                s.url
            ))
            .bearer_auth(&token)
            .header("content-type", "application/x-ndjson")
            .body(row.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let xdr = s.token_with("AdvancedHunting.Read.All").await;
        let (st, v) = post(
            &s,
            "/api/advancedhunting/run",
            &xdr,
            json!({ "Query": "DeviceProcessEvents | count" }),
        )
        .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(
            v["Results"],
            json!([{"Count": 3}]),
            "{}: the old row is outside the window",
            b.name
        );
        let (st, v) = post(
            &s,
            "/api/advancedhunting/run",
            &xdr,
            json!({ "Query": "DeviceProcessEvents | project ReportId" }),
        )
        .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["Results"].as_array().unwrap().len(), 2, "{v}");
        assert_eq!(v["Stats"]["Truncated"], true, "{v}");
        // externaldata reads only what the configuration maps to a local file.
        let query = |url: &str| {
            format!(
                "externaldata (SHA1: string, Name: string) ['{url}'] with (format='csv')\n| summarize Files = count(), Names = make_set(Name)"
            )
        };
        let (st, v) = post(
            &s,
            "/api/advancedhunting/run",
            &xdr,
            json!({ "Query": query("https://feeds.example/bad.csv") }),
        )
        .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(
            v["Results"],
            json!([{"Files": 2, "Names": ["bad.exe", "worse.exe"]}]),
            "{v}"
        );
        let (st, v) = post(
            &s,
            "/api/advancedhunting/run",
            &xdr,
            json!({ "Query": query("https://feeds.example/other.csv") }),
        )
        .await;
        assert_eq!(st, 400, "{v}");
        let message = assert_mde_error(&v, "BadRequest");
        assert!(
            message.contains("offline") && message.contains("line 1"),
            "{message}"
        );
        drop(s);

        // A tenant out of query time gets a 429 with Retry-After.
        let s = Server::start_opts(
            &b,
            &["--config", spent.to_str().unwrap()],
            &["--no-rate-limits"],
        );
        let xdr = s.token_with("AdvancedHunting.Read.All").await;
        let resp = s
            .http
            .post(format!("{}/api/advancedhunting/run", s.url))
            .bearer_auth(&xdr)
            .json(&json!({ "Query": "DeviceProcessEvents | count" }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 429);
        assert!(resp.headers().get("retry-after").is_some());
        let v: Value = resp.json().await.unwrap();
        assert!(
            assert_mde_error(&v, "TooManyRequests").contains("15 minutes"),
            "{v}"
        );
    }
}
