//! Where investigations run their telemetry queries: a runtime of their own, one worker
//! thread at a lower CPU priority, so that a burst of alerts does not starve ingestion.
//!
//! Investigations run one after another as fast as alerts come, and each reads the device's
//! telemetry and the fleet's prevalence through DataFusion. On the server's runtime those
//! queries took both cores from ingestion: 79 investigations cut the events ingested per
//! second by 37–46% (docs/BENCHMARKS.md, "Ingestion with matching on, the purge delay in the
//! server"). Only the queries move here: the state store's connections stay with the server's
//! runtime, whose I/O a busy low-priority thread must not delay.

use datafusion::prelude::SessionContext;
use rampart_kql::{HuntError, HuntResult, Limits, QueryParameters};
use tokio::runtime::{Builder, Runtime};

/// The nice value of the analysis threads: the kernel then gives them about a tenth of the
/// CPU that a thread at the default priority gets when both want it.
const NICENESS: i32 = 10;

/// The analysis runtime; `None` when it could not be started, and queries run on the caller's
/// runtime. Dropping it does not wait for its queries, so that it may be dropped from async
/// code (as the server's state is).
pub struct AnalysisRuntime(Option<Runtime>);

impl AnalysisRuntime {
    pub(crate) fn new() -> AnalysisRuntime {
        let runtime = Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("rampart-analysis")
            .on_thread_start(lower_priority)
            .enable_all()
            .build();
        match runtime {
            Ok(runtime) => AnalysisRuntime(Some(runtime)),
            Err(e) => {
                tracing::warn!("investigation queries share the server's threads: {e}");
                AnalysisRuntime(None)
            }
        }
    }

    /// Runs `query` on the analysis runtime (awaited from any runtime).
    pub async fn run(
        &self,
        ctx: &SessionContext,
        query: &str,
        limits: &Limits,
    ) -> Result<HuntResult, HuntError> {
        let params = QueryParameters::new();
        let Some(runtime) = &self.0 else {
            return rampart_kql::run(ctx, query, &params, limits).await;
        };
        let (ctx, query, limits) = (ctx.clone(), query.to_owned(), limits.clone());
        runtime
            .spawn(async move { rampart_kql::run(&ctx, &query, &params, &limits).await })
            .await
            .unwrap_or_else(|e| Err(HuntError::Execution(format!("the query stopped: {e}"))))
    }
}

impl Drop for AnalysisRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Lowers the calling thread's CPU priority (where the kernel refuses, the thread keeps the
/// default one).
fn lower_priority() {
    // SAFETY: `setpriority` takes no pointers; on Linux, `PRIO_PROCESS` with id 0 names the
    // calling thread alone (threads have their own nice values).
    let failed = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, NICENESS) } != 0;
    if failed {
        tracing::debug!(
            "analysis thread keeps its priority: {}",
            std::io::Error::last_os_error()
        );
    }
}
