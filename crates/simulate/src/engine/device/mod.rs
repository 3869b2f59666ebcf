//! One device of the simulation: its context (strings computed once: names, accounts,
//! addresses, snapshot JSON) and its mutable state (random stream, counters, process table).

mod ctx;
mod state;

pub use ctx::{DevCtx, LOCAL_SERVICE, NETWORK_SERVICE, SYSTEM};
pub use state::{DevState, Proc, Session};
