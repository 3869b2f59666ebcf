//! Exponential backoff with jitter: the wait between attempts doubles up to a cap, and each
//! wait is drawn between half and all of it, so that agents cut off together do not all come
//! back in the same second.

use rand::Rng;
use std::time::Duration;

/// Longest wait a server's `Retry-After` can impose, so that a wrong header cannot park the
/// agent for hours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    /// Waits start near `base` and stop growing at `cap`.
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff {
            base,
            cap: cap.max(base),
            attempt: 0,
        }
    }

    /// After a success: the next failure starts from `base` again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The wait before the next attempt; at least `retry_after` when the server gave one.
    pub fn next_delay(&mut self, retry_after: Option<Duration>) -> Duration {
        let exp = self.attempt.min(20);
        self.attempt = self.attempt.saturating_add(1);
        let full = self
            .base
            .checked_mul(1u32 << exp)
            .unwrap_or(self.cap)
            .min(self.cap);
        let half = full / 2;
        let jittered = half + rand::thread_rng().gen_range(Duration::ZERO..=half);
        match retry_after {
            Some(ra) => jittered.max(ra.min(MAX_RETRY_AFTER)),
            None => jittered,
        }
    }
}
