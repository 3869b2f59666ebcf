//! The one place every format hands its entries to: fills in the [`Defaults`], checks each
//! request as the API will, and drops duplicates, so that the four formats behave alike.

use crate::{Defaults, FeedError, FeedItem, Format, Origin, Parsed};
use rampart_core::indicator::{
    IndicatorAction, IndicatorRequest, IndicatorType, RequestedAction, normalize_value,
};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use time::OffsetDateTime;

pub(crate) struct Collector<'a> {
    defaults: &'a Defaults,
    format: Format,
    /// Only for `validate`'s signature: the expiration rule it serves is left to the caller.
    now: OffsetDateTime,
    /// Normalised (type, value) → where it was first seen.
    seen: HashMap<(IndicatorType, String), Origin>,
    out: Parsed,
}

impl<'a> Collector<'a> {
    pub(crate) fn new(format: Format, defaults: &'a Defaults) -> Self {
        Collector {
            defaults,
            format,
            now: OffsetDateTime::now_utc(),
            seen: HashMap::new(),
            out: Parsed::default(),
        }
    }

    pub(crate) fn error(&mut self, origin: Origin, reason: impl Into<String>) {
        self.out.errors.push(FeedError {
            origin,
            reason: reason.into(),
        });
    }

    /// Adds one indicator, or the reason it cannot be one. The request must carry a value and
    /// a type; `field` names where the value came from in the feed, for messages.
    pub(crate) fn push(&mut self, origin: Origin, field: &str, mut request: IndicatorRequest) {
        let (Some(raw), Some(ty)) = (request.indicator_value.as_deref(), request.indicator_type)
        else {
            self.error(origin, format!("{field}: no indicator value or type"));
            return;
        };
        let value = raw.trim().to_owned();
        let key = match normalize_value(ty, &value, self.defaults.allow_internal) {
            Ok(k) => k,
            Err(r) => {
                self.error(origin, format!("{field}: {}", r.message));
                return;
            }
        };
        request.indicator_value = Some(value);

        let d = self.defaults;
        if request.action.is_none() {
            request.action = Some(default_action(d.action, ty));
        }
        request.severity.get_or_insert(d.severity);
        request.generate_alert.get_or_insert(d.generate_alert);
        if request.expiration_time.is_none() {
            request.expiration_time = d.expiration_time;
        }
        if is_blank(&request.title) {
            request.title = Some(match &d.title {
                Some(t) if !t.trim().is_empty() => t.clone(),
                _ => format!("{ty} from {} feed", self.format.label()),
            });
        }
        if is_blank(&request.description) {
            // MDE requires a description; say at least where the indicator came from.
            request.description = Some(format!(
                "Imported from a {} feed ({origin}).",
                self.format.label()
            ));
        }
        if d.allow_internal {
            request.allow_internal = Some(true);
        }

        // Everything else the API checks (actions per type, Audit needs an alert, device-group
        // names), now, so that the error names the entry rather than a batch. Expiration is
        // left out: whether it is past depends on when the caller submits, and a revoked STIX
        // indicator is given a past expiration on purpose.
        let mut probe = request.clone();
        probe.expiration_time = None;
        if let Err(r) = probe.validate(self.now) {
            self.error(origin, r.message);
            return;
        }

        match self.seen.entry((ty, key)) {
            Entry::Occupied(first) => {
                let reason = format!("duplicate of {}", first.get());
                self.error(origin, reason);
            }
            Entry::Vacant(slot) => {
                slot.insert(origin.clone());
                self.out.items.push(FeedItem { origin, request });
            }
        }
    }

    pub(crate) fn finish(self) -> Parsed {
        self.out
    }
}

fn is_blank(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(|s| s.trim().is_empty())
}

/// The default action as it applies to `ty`. MDE blocks certificates only with
/// BlockAndRemediate and network indicators only with Block, so one "block" default would
/// refuse half of a mixed feed; the default is the feed-wide intent, so it takes the block
/// that applies. An action the feed itself names is never changed.
fn default_action(action: RequestedAction, ty: IndicatorType) -> RequestedAction {
    use IndicatorAction::{Block, BlockAndRemediate};
    let allowed = ty.allowed_actions();
    match action {
        RequestedAction::Current(Block) if !allowed.contains(&Block) => {
            RequestedAction::Current(BlockAndRemediate)
        }
        RequestedAction::Current(BlockAndRemediate) | RequestedAction::AlertAndBlock
            if !allowed.contains(&BlockAndRemediate) =>
        {
            RequestedAction::Current(Block)
        }
        other => other,
    }
}
