//! Arbitrary bytes as a KQL query: parsing, and binding against the advanced-hunting
//! schema when it parses, must return `Ok` or a located error, never panic, overflow the
//! stack, or hang.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_kql::{HuntingCatalog, QueryParameters};

/// Queries run on tokio worker threads in the server, whose stacks are 2 MiB: the
/// parser's and binder's stack budgets must hold there, not only on the 8 MiB main thread
/// libFuzzer runs on.
const WORKER_STACK: usize = 2 * 1024 * 1024;

fuzz_target!(|data: &[u8]| {
    // Queries reach the engine as JSON or command-line strings: UTF-8, lossily decoded here.
    let text = String::from_utf8_lossy(data).into_owned();
    let worker = std::thread::Builder::new()
        .stack_size(WORKER_STACK)
        .spawn(move || check(&text))
        .expect("spawn a worker thread");
    // A panic in the worker is re-raised here so that libFuzzer records the input.
    if let Err(panic) = worker.join() {
        std::panic::resume_unwind(panic);
    }
});

fn check(text: &str) {
    let query = match rampart_kql::parse(text) {
        Ok(query) => query,
        Err(error) => {
            assert!(!error.message.is_empty(), "empty parse error message");
            assert!(error.line >= 1 && error.column >= 1, "{error:?}");
            assert!(error.span.start <= text.len(), "{error:?}");
            return;
        }
    };
    // Lenient: declared query parameters without values bind as empty values, as for
    // `rampart hunt --check`, so that more of the binder is reached.
    if let Err(error) = rampart_kql::bind(&query, &HuntingCatalog, &QueryParameters::lenient()) {
        assert!(!error.message.is_empty(), "empty bind error message");
        assert!(error.line >= 1 && error.column >= 1, "{error:?}");
        assert!(error.span.start <= text.len(), "{error:?}");
    }
}
