//! `rampart hunt 'QUERY'` / `rampart hunt -f q.kql`: advanced hunting from the command line, over
//! the local data dir or, with `--server`, through a running server's advanced-hunting API with
//! an app's client credentials. Output is a table on a terminal and JSON, CSV or NDJSON otherwise;
//! `--check` parses and binds without running. With no query on a terminal (or `--interactive`),
//! it is a prompt with a history kept across sessions.

use crate::admin::resolve_tenant;
use crate::cli::{HuntArgs, HuntFormat};
use crate::config::Settings;
use crate::serve::{open_events, open_store};
use anyhow::{Context, anyhow, bail};
use rampart_api::hunt_json;
use rampart_core::TenantId;
use rampart_kql::ast::ScalarType;
use rampart_telemetry::EventStore;
use serde_json::Value;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

/// Widest a table cell is shown on a terminal; longer values end in `…`.
const CELL_WIDTH: usize = 48;

pub async fn run(settings: &Settings, args: HuntArgs) -> anyhow::Result<()> {
    let interactive = args.interactive
        || (args.query.is_none()
            && args.file.is_none()
            && !args.check
            && std::io::stdin().is_terminal());
    if interactive {
        if args.query.is_some() || args.file.is_some() || args.check {
            bail!("the interactive prompt takes no query, -f or --check");
        }
        let backend = Backend::open(settings, &args).await?;
        let result = prompt(&backend, &args, &history_path(settings)).await;
        backend.close().await?;
        return result;
    }
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
    let backend = Backend::open(settings, &args).await?;
    let result = backend.run(&query).await;
    backend.close().await?;
    let (schema, rows) = result?;
    print_result(&args, &schema, &rows)
}

fn print_result(args: &HuntArgs, schema: &Columns, rows: &[Value]) -> anyhow::Result<()> {
    let format = args.format.unwrap_or(if std::io::stdout().is_terminal() {
        HuntFormat::Table
    } else {
        HuntFormat::Json
    });
    let mut out = std::io::stdout().lock();
    match format {
        HuntFormat::Json => {
            let doc = serde_json::json!({ "Schema": schema_value(schema), "Results": rows });
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
        HuntFormat::Ndjson => {
            for r in rows {
                serde_json::to_writer(&mut out, r)?;
                writeln!(out)?;
            }
        }
        HuntFormat::Csv => write_csv(&mut out, schema, rows)?,
        HuntFormat::Table => write_table(&mut out, schema, rows)?,
    }
    out.flush()?;
    Ok(())
}

/// Where the prompt keeps its history: `~/.rampart_hunt_history`, else in the data dir.
fn history_path(settings: &Settings) -> PathBuf {
    match std::env::var_os("HOME") {
        Some(home) if !home.is_empty() => PathBuf::from(home).join(".rampart_hunt_history"),
        _ => settings.data_dir.join("hunt_history"),
    }
}

/// Most queries the history keeps.
const HISTORY_LEN: usize = 500;

/// The interactive prompt: a query is one or more lines ended by an empty line; `:history`
/// lists earlier queries (kept across sessions, one JSON string a line), `:N` runs the Nth
/// again, `:quit` or end of input leaves. An error is printed and the prompt goes on.
async fn prompt(backend: &Backend, args: &HuntArgs, history_file: &Path) -> anyhow::Result<()> {
    let mut history: Vec<String> = std::fs::read_to_string(history_file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut err = std::io::stderr();
    writeln!(
        err,
        "KQL prompt: end a query with an empty line; :history, :N to run query N again, :quit"
    )?;
    loop {
        let mut query = String::new();
        loop {
            write!(err, "{}", if query.is_empty() { "kql> " } else { "...> " })?;
            err.flush()?;
            let Some(line) = lines.next() else {
                // End of input: run what was typed, then leave.
                if !query.trim().is_empty() {
                    run_one(backend, args, &query, &mut history, history_file).await;
                }
                writeln!(err)?;
                return Ok(());
            };
            let line = line.context("reading the prompt")?;
            let trimmed = line.trim();
            if query.is_empty() && trimmed.starts_with(':') {
                match trimmed {
                    ":quit" | ":q" | ":exit" => return Ok(()),
                    ":history" | ":h" => {
                        for (i, q) in history.iter().enumerate() {
                            writeln!(err, "{:>4}  {}", i + 1, q.replace('\n', "\n      "))?;
                        }
                    }
                    other => match other[1..].parse::<usize>() {
                        Ok(n) if n >= 1 && n <= history.len() => {
                            query = history[n - 1].clone();
                            writeln!(err, "{query}")?;
                            break;
                        }
                        _ => writeln!(
                            err,
                            "unknown command {other}: use :history, :N (1 to {}) or :quit",
                            history.len()
                        )?,
                    },
                }
                continue;
            }
            if trimmed.is_empty() {
                if query.trim().is_empty() {
                    query.clear();
                    continue;
                }
                break;
            }
            if !query.is_empty() {
                query.push('\n');
            }
            query.push_str(&line);
        }
        run_one(backend, args, &query, &mut history, history_file).await;
    }
}

/// Runs one query of the prompt, prints its result or error, and remembers it.
async fn run_one(
    backend: &Backend,
    args: &HuntArgs,
    query: &str,
    history: &mut Vec<String>,
    history_file: &Path,
) {
    let query = query.trim().to_owned();
    match backend.run(&query).await {
        Ok((schema, rows)) => {
            let shown = HuntArgs {
                format: Some(args.format.unwrap_or(HuntFormat::Table)),
                ..args.clone()
            };
            if let Err(e) = print_result(&shown, &schema, &rows) {
                eprintln!("error: {e:#}");
            }
        }
        Err(e) => eprintln!("error: {e:#}"),
    }
    if history.last() != Some(&query) {
        history.push(query);
        let start = history.len().saturating_sub(HISTORY_LEN);
        history.drain(..start);
        let text: String = history
            .iter()
            .map(|q| format!("{}\n", Value::String(q.clone())))
            .collect();
        if let Err(e) = std::fs::write(history_file, text) {
            eprintln!(
                "warning: could not save the history to {}: {e}",
                history_file.display()
            );
        }
    }
}

/// The query text: the argument, the file of `-f` (`-` is stdin), or stdin when it is not a terminal.
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

/// Where queries run: the data dir's event store, or a server's API with an app token.
enum Backend {
    Local {
        events: EventStore,
        tenant: TenantId,
        /// `externaldata` URLs mapped to files (`[api.hunting] external_data`).
        files: rampart_kql::ExternalFiles,
    },
    Remote {
        http: reqwest::Client,
        server: String,
        token: String,
    },
}

impl Backend {
    async fn open(settings: &Settings, args: &HuntArgs) -> anyhow::Result<Backend> {
        match &args.remote.server {
            Some(server) => {
                let (http, server, token) =
                    crate::remote::login(server, args.tenant.as_deref(), &args.remote).await?;
                Ok(Backend::Remote {
                    token,
                    http,
                    server,
                })
            }
            None => {
                let store = open_store(settings).await?;
                let tenant = resolve_tenant(store.as_ref(), args.tenant.as_deref()).await?;
                let events = open_events(settings).await.context(
                    "a running server holds the event store; use --server to hunt through it",
                )?;
                Ok(Backend::Local {
                    events,
                    tenant,
                    files: settings.api.hunting.external_files(),
                })
            }
        }
    }

    async fn close(self) -> anyhow::Result<()> {
        if let Backend::Local { events, .. } = self {
            events.shutdown().await.context("closing the event store")?;
        }
        Ok(())
    }

    async fn run(&self, query: &str) -> anyhow::Result<(Columns, Vec<Value>)> {
        match self {
            Backend::Local {
                events,
                tenant,
                files,
            } => local(events, *tenant, files, query).await,
            Backend::Remote {
                http,
                server,
                token,
            } => remote(http, server, token, query).await,
        }
    }
}

/// Runs the query on the data dir's event store.
async fn local(
    events: &EventStore,
    tenant: TenantId,
    files: &rampart_kql::ExternalFiles,
    query: &str,
) -> anyhow::Result<(Columns, Vec<Value>)> {
    let ctx = events.session(tenant)?;
    let limits = rampart_kql::plan::Limits::default();
    let result = rampart_kql::plan::run_with_files(
        &ctx,
        query,
        &rampart_kql::bind::QueryParameters::new(),
        &limits,
        files,
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
    http: &reqwest::Client,
    server: &str,
    token: &str,
    query: &str,
) -> anyhow::Result<(Columns, Vec<Value>)> {
    let resp = http
        .post(format!("{server}/api/advancedhunting/run"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "Query": query }))
        .send()
        .await
        .with_context(|| format!("reaching {server}"))?;
    let body: Value = crate::remote::json_or_error(resp).await?;
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
