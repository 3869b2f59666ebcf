//! Detection: custom detection rules (a KQL query whose rows become alerts) and indicator
//! matching on the ingestion path.
//!
//! - [`rule`] checks a rule before it is stored: the query binds against the advanced-hunting
//!   tables, returns `Timestamp` and a device, its entity mapping names real result columns, and
//!   a continuous rule is a row-by-row filter over one table.
//! - [`alerts`] turns result rows into alerts: one per distinct entity combination, suppressed
//!   when the same rule alerted on the same entities inside its dedupe window, with the rule's
//!   machine actions submitted for each new alert's device.
//! - [`engine`] runs rules: scheduled ones when due (claimed through the state store, so servers
//!   sharing it never run one slot twice) over the tenant's telemetry inside the lookback window,
//!   continuous ones on every ingested batch of their table, any one on demand; a failed run
//!   pauses its rule with the reason.
//!
//! - [`indicators`] checks every ingested row against the tenant's indicators of compromise
//!   (the `rampart-ioc` index) and raises one alert per indicator and device.
//! - [`yara`] checks YARA rule sets before they are stored (agents scan with them).
//! - [`antivirus`] raises alerts from the agents' antivirus findings (YARA matches).
//! - [`alert_rows`] writes alerts as `AlertInfo` and `AlertEvidence` rows for hunting.
//! - [`retrohunt`] searches stored telemetry for new and changed indicators (and on demand),
//!   with the same matching, and raises retrospective alerts.
//!
//! Telemetry flows in through [`engine::DetectionEngine::observe`] after the event store has made
//! it durable; alerts and actions flow out through the state store.

pub mod alert_rows;
pub mod alerts;
pub mod antivirus;
pub mod engine;
pub mod indicators;
pub mod retrohunt;
pub mod rule;
pub mod yara;

pub use engine::{DetectionEngine, EngineConfig};
pub use indicators::IndicatorMatcher;
pub use retrohunt::{RetroHuntError, RetroHuntReport};
pub use rule::{CompiledRule, RuleError, compile};
