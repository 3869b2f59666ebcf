//! `rampart hunt 'QUERY'` / `rampart hunt -f q.kql`: advanced hunting from the command line, over
//! the local data dir or, with `--server`, through a running server's advanced-hunting API with
//! an app's client credentials. Output is a table on a terminal and JSON, CSV or NDJSON otherwise;
//! `--check` parses and binds without running.

use crate::admin::resolve_tenant;
use crate::cli::{HuntArgs, HuntFormat};
use crate::config::Settings;
use crate::serve::{open_events, open_store};
use anyhow::{Context, anyhow, bail};
use rampart_api::hunt_json;
use rampart_kql::ast::ScalarType;
use serde_json::Value;
use std::io::{IsTerminal, Read, Write};

/// Widest a table cell is shown on a terminal; longer values end in `…`.
const CELL_WIDTH: usize = 48;

pub async fn run(settings: &Settings, args: HuntArgs) -> anyhow::Result<()> {
    let query = query_text(&args)?;
    if args.check {
        return match rampart_kql::bind::check(&query, &rampart_kql::bind::HuntingCatalog) {
            Ok(_) => {
                println!("ok");
                Ok(())
            }
            Err(e) => Err(anyhow!("{e}")),
        };
    }
    let (schema, rows) = match &args.server {
        Some(server) => remote(server, &args, &query).await?,
        None => local(settings, &args, &query).await?,
    };
    let format = args.format.unwrap_or(if std::io::stdout().is_terminal() {
        HuntFormat::Table
    } else {
        HuntFormat::Json
    });
    let mut out = std::io::stdout().lock();
    match format {
        HuntFormat::Json => {
            let doc = serde_json::json!({ "Schema": schema_value(&schema), "Results": rows });
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
        HuntFormat::Ndjson => {
            for r in &rows {
                serde_json::to_writer(&mut out, r)?;
                writeln!(out)?;
            }
        }
        HuntFormat::Csv => write_csv(&mut out, &schema, &rows)?,
        HuntFormat::Table => write_table(&mut out, &schema, &rows)?,
    }
    Ok(())
}

/// The query: the argument, the file of `-f` (`-` is stdin), or stdin when it is not a terminal.
fn query_text(args: &HuntArgs) -> anyhow::Result<String> {
    match (&args.query, &args.file) {
        (Some(_), Some(_)) => bail!("give the query as an argument or with -f, not both"),
        (Some(q), None) => Ok(q.clone()),
        (None, Some(p)) if p.as_os_str() == "-" => read_stdin(),
        (None, Some(p)) => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
        }
        (None, None) if !std::io::stdin().is_terminal() => read_stdin(),
        (None, None) => bail!("no query: give one as an argument, with -f FILE, or on stdin"),
    }
}

fn read_stdin() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("reading the query from stdin")?;
    Ok(s)
}

/// (name, .NET type name) of each result column.
type Columns = Vec<(String, String)>;

fn schema_value(schema: &Columns) -> Value {
    Value::Array(
        schema
            .iter()
            .map(|(n, t)| serde_json::json!({ "Name": n, "Type": t }))
            .collect(),
    )
}

/// Runs the query on the data dir's event store.
async fn local(
    settings: &Settings,
    args: &HuntArgs,
    query: &str,
) -> anyhow::Result<(Columns, Vec<Value>)> {
    let store = open_store(settings).await?;
    let tenant = resolve_tenant(store.as_ref(), args.tenant.as_deref()).await?;
    let events = open_events(settings)
        .await
        .context("a running server holds the event store; use --server to hunt through it")?;
    let ctx = events.session(tenant)?;
    let limits = rampart_kql::plan::Limits::default();
    let result = rampart_kql::plan::run(
        &ctx,
        query,
        &rampart_kql::bind::QueryParameters::new(),
        &limits,
    )
    .await
    .map_err(|e| anyhow!("{e}"))?;
    let columns: Vec<(String, ScalarType)> = result
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.ty))
        .collect();
    let rows = hunt_json::rows_json(&columns, &result.batches);
    if result.truncated {
        eprintln!("warning: the result was cut at {} rows", limits.max_rows);
    }
    events.shutdown().await.context("closing the event store")?;
    Ok((
        columns
            .iter()
            .map(|(n, t)| (n.clone(), hunt_json::type_name(*t).to_owned()))
            .collect(),
        rows,
    ))
}

/// Runs the query through a server's `POST /api/advancedhunting/run`.
async fn remote(
    server: &str,
    args: &HuntArgs,
    query: &str,
) -> anyhow::Result<(Columns, Vec<Value>)> {
    let (Some(tenant), Some(id), Some(secret)) = (
        args.tenant.as_deref(),
        args.client_id.as_deref(),
        args.client_secret.as_deref(),
    ) else {
        bail!(
            "--server needs --tenant, --client-id and --client-secret (or RAMPART_CLIENT_ID / RAMPART_CLIENT_SECRET)"
        );
    };
    let server = server.trim_end_matches('/');
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{server}/{tenant}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
            ("scope", &format!("{server}/.default")),
        ])
        .send()
        .await
        .with_context(|| format!("reaching {server}"))?
        .json()
        .await
        .context("reading the token response")?;
    let Some(access) = token["access_token"].as_str() else {
        bail!("the server refused the credentials: {token}");
    };
    let resp = http
        .post(format!("{server}/api/advancedhunting/run"))
        .bearer_auth(access)
        .json(&serde_json::json!({ "Query": query }))
        .send()
        .await
        .with_context(|| format!("reaching {server}"))?;
    let status = resp.status();
    let body: Value = resp.json().await.context("reading the hunting response")?;
    if !status.is_success() {
        let message = body["error"]["message"].as_str().unwrap_or("no message");
        bail!("{status}: {message}");
    }
    let schema = body["Schema"]
        .as_array()
        .map(|cols| {
            cols.iter()
                .map(|c| {
                    (
                        c["Name"].as_str().unwrap_or_default().to_owned(),
                        c["Type"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let rows = body["Results"].as_array().cloned().unwrap_or_default();
    Ok((schema, rows))
}

/// A cell as text: strings bare, everything else as JSON, null as empty.
fn cell(row: &Value, name: &str) -> String {
    match row.get(name) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

fn write_csv(out: &mut impl Write, schema: &Columns, rows: &[Value]) -> std::io::Result<()> {
    let line = |fields: Vec<String>| {
        fields
            .iter()
            .map(|f| {
                if f.contains([',', '"', '\n', '\r']) {
                    format!("\"{}\"", f.replace('"', "\"\""))
                } else {
                    f.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    writeln!(
        out,
        "{}",
        line(schema.iter().map(|(n, _)| n.clone()).collect())
    )?;
    for r in rows {
        writeln!(
            out,
            "{}",
            line(schema.iter().map(|(n, _)| cell(r, n)).collect())
        )?;
    }
    Ok(())
}

fn write_table(out: &mut impl Write, schema: &Columns, rows: &[Value]) -> std::io::Result<()> {
    let shown = |s: String| -> String {
        let one_line = s.replace(['\n', '\r', '\t'], " ");
        if one_line.chars().count() > CELL_WIDTH {
            let cut: String = one_line.chars().take(CELL_WIDTH - 1).collect();
            format!("{cut}…")
        } else {
            one_line
        }
    };
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| schema.iter().map(|(n, _)| shown(cell(r, n))).collect())
        .collect();
    let widths: Vec<usize> = schema
        .iter()
        .enumerate()
        .map(|(i, (n, _))| {
            cells
                .iter()
                .map(|c| c[i].chars().count())
                .chain([n.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |fields: &[String]| {
        fields
            .iter()
            .zip(&widths)
            .map(|(f, w)| format!("{f:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let header: Vec<String> = schema.iter().map(|(n, _)| n.clone()).collect();
    writeln!(out, "{}", line(&header))?;
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    writeln!(out, "{}", line(&rule))?;
    for c in &cells {
        writeln!(out, "{}", line(c))?;
    }
    writeln!(out, "({} rows)", rows.len())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Columns, Vec<Value>) {
        (
            vec![
                ("DeviceName".into(), "String".into()),
                ("count_".into(), "Int64".into()),
            ],
            vec![
                serde_json::json!({"DeviceName": "web-01, dmz", "count_": 3}),
                serde_json::json!({"DeviceName": null, "count_": 12}),
            ],
        )
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        let (schema, rows) = sample();
        let mut out = Vec::new();
        write_csv(&mut out, &schema, &rows).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "DeviceName,count_\n\"web-01, dmz\",3\n,12\n"
        );
    }

    #[test]
    fn table_aligns_columns() {
        let (schema, rows) = sample();
        let mut out = Vec::new();
        write_table(&mut out, &schema, &rows).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "DeviceName   count_\n-----------  ------\nweb-01, dmz  3\n             12\n(2 rows)\n"
        );
    }
}
