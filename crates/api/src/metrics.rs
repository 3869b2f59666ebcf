//! Prometheus metrics: request counts and latencies per route, in the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Latency histogram bounds in seconds.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct RouteStats {
    /// Requests by status code.
    by_status: BTreeMap<u16, u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum_secs: f64,
}

/// The server's metrics registry.
#[derive(Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<(String, String), RouteStats>>,
    /// Telemetry rows by table and outcome (`accepted`, `rejected`).
    rows: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// Agent command polls being held now: the agents connected to this server.
    polls_held: AtomicU64,
}

/// One held agent poll, counted in `rampart_agent_polls_held` while it lives.
pub struct HeldPoll<'a>(&'a AtomicU64);

impl Drop for HeldPoll<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Records one request to the route template `route` (never the raw path, which would let a
    /// client grow the registry without bound).
    pub fn record(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let s = routes
            .entry((method.to_owned(), route.to_owned()))
            .or_default();
        *s.by_status.entry(status).or_default() += 1;
        s.count += 1;
        s.sum_secs += secs;
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                s.buckets[i] += 1;
            }
        }
    }

    /// Counts telemetry rows of `table` (a table name from the schema, or an unknown name a
    /// client sent, which is folded into `other` so clients can't grow the registry).
    pub fn record_rows(&self, table: &str, outcome: &'static str, n: u64) {
        let table = if rampart_core::schema::table(table).is_some() {
            table
        } else {
            "other"
        };
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        *rows.entry((table.to_owned(), outcome)).or_default() += n;
    }

    /// Counts a poll as held until the returned guard is dropped (however the handler ends).
    pub fn hold_poll(&self) -> HeldPoll<'_> {
        self.polls_held.fetch_add(1, Ordering::Relaxed);
        HeldPoll(&self.polls_held)
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP rampart_agent_polls_held Agent command polls held open now (connected agents).\n");
        out.push_str("# TYPE rampart_agent_polls_held gauge\n");
        let _ = writeln!(
            out,
            "rampart_agent_polls_held {}",
            self.polls_held.load(Ordering::Relaxed)
        );
        process_metrics(&mut out);
        {
            let rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
            out.push_str("# HELP rampart_telemetry_rows_total Telemetry rows received, by table and outcome.\n");
            out.push_str("# TYPE rampart_telemetry_rows_total counter\n");
            for ((t, o), n) in rows.iter() {
                let _ = writeln!(
                    out,
                    "rampart_telemetry_rows_total{{table=\"{t}\",outcome=\"{o}\"}} {n}"
                );
            }
        }
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str("# HELP rampart_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE rampart_http_requests_total counter\n");
        for ((m, r), s) in routes.iter() {
            for (status, n) in &s.by_status {
                let _ = writeln!(
                    out,
                    "rampart_http_requests_total{{method=\"{m}\",route=\"{}\",status=\"{status}\"}} {n}",
                    escape(r)
                );
            }
        }
        out.push_str(
            "# HELP rampart_http_request_duration_seconds HTTP request latency by route.\n",
        );
        out.push_str("# TYPE rampart_http_request_duration_seconds histogram\n");
        for ((m, r), s) in routes.iter() {
            let r = escape(r);
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "rampart_http_request_duration_seconds_bucket{{method=\"{m}\",route=\"{r}\",le=\"{b}\"}} {}",
                    s.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "rampart_http_request_duration_seconds_bucket{{method=\"{m}\",route=\"{r}\",le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "rampart_http_request_duration_seconds_sum{{method=\"{m}\",route=\"{r}\"}} {}",
                s.sum_secs
            );
            let _ = writeln!(
                out,
                "rampart_http_request_duration_seconds_count{{method=\"{m}\",route=\"{r}\"}} {}",
                s.count
            );
        }
        out
    }
}

/// The standard `process_*` metrics of Prometheus client libraries, from `/proc/self`: what an
/// operator (or `rampart simulate --agents`) reads to see what the server costs. Absent where
/// `/proc` is not.
fn process_metrics(out: &mut String) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok());
    if let Some(kib) = rss_kib {
        out.push_str("# HELP process_resident_memory_bytes Resident memory size in bytes.\n");
        out.push_str("# TYPE process_resident_memory_bytes gauge\n");
        let _ = writeln!(out, "process_resident_memory_bytes {}", kib * 1024);
    }
    // utime and stime are the 14th and 15th fields; the command name before them may hold
    // spaces, so count from its closing parenthesis. The kernel reports them in USER_HZ,
    // which is 100 on every Linux architecture.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let ticks = stat.rfind(')').and_then(|end| {
        let mut fields = stat[end + 1..].split_whitespace().skip(11);
        let user: u64 = fields.next()?.parse().ok()?;
        let system: u64 = fields.next()?.parse().ok()?;
        Some(user + system)
    });
    if let Some(ticks) = ticks {
        out.push_str(
            "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n",
        );
        out.push_str("# TYPE process_cpu_seconds_total counter\n");
        let _ = writeln!(out, "process_cpu_seconds_total {}", ticks as f64 / 100.0);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        out.push_str("# HELP process_open_fds Number of open file descriptors.\n");
        out.push_str("# TYPE process_open_fds gauge\n");
        let _ = writeln!(out, "process_open_fds {}", fds.count());
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
