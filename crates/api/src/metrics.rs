//! Prometheus metrics: request counts and latencies per route, in the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
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

    /// The registry in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
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

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
