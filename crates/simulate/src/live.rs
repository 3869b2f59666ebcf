//! The fleet in real time: a long-lived simulation that hands out the rows that have become due,
//! for a population of simulated agents posting batches to a server.
//!
//! It is the same engine as [`crate::generate`], so the rows of `[start, t]` are the same whether
//! produced in one batch or over many [`Live::due`] calls.

use crate::engine::Engine;
use crate::spec::{FleetSpec, ScenarioError, ScenarioSpec};
use crate::{Fleet, Sink, Stats};
use std::io;

pub struct Live {
    engine: Engine,
    /// Every row with a time up to and including this has been emitted.
    emitted_to: i64,
    injected: usize,
}

impl Live {
    /// Starts at `spec.start_ns`; `spec.days` only places scenarios without a time (the middle
    /// of that window). Scenarios naming an unknown or unsuitable device fall back to a
    /// suitable one; use [`Live::try_inject`] to get the error instead.
    pub fn new(spec: &FleetSpec) -> Live {
        let engine = Engine::new(spec);
        let emitted_to = engine.start - 1;
        let mut live = Live {
            engine,
            emitted_to,
            injected: 0,
        };
        for s in &spec.scenarios {
            let at = s.at_ns.unwrap_or(live.engine.middle);
            live.inject(s.clone(), at);
        }
        live
    }

    /// Emits every row with a time in `(last call, now_ns]` (the first call starts at the
    /// spec's start); returns how many.
    pub fn due(&mut self, now_ns: i64, sink: &mut dyn Sink) -> io::Result<usize> {
        if now_ns <= self.emitted_to {
            return Ok(0);
        }
        // Rows are stamped in whole ticks; the queue runs items strictly before its bound.
        let n = self.engine.run_until(now_ns.saturating_add(1), sink)?;
        self.emitted_to = now_ns;
        Ok(n as usize)
    }

    /// Injects a scenario starting at `s.at_ns`, or `now_ns` when it has none — never before
    /// what has already been emitted. An unknown or unsuitable device falls back to a suitable
    /// one; a fleet without any suitable device ignores the scenario.
    pub fn inject(&mut self, s: ScenarioSpec, now_ns: i64) {
        if self.try_inject(s.clone(), now_ns).is_err() && s.device.is_some() {
            let _ = self.try_inject(ScenarioSpec { device: None, ..s }, now_ns);
        }
    }

    /// Like [`Live::inject`], but reports why a scenario cannot be placed.
    pub fn try_inject(&mut self, s: ScenarioSpec, now_ns: i64) -> Result<(), ScenarioError> {
        let at = s.at_ns.unwrap_or(now_ns).max(self.emitted_to + 1);
        let s = ScenarioSpec {
            at_ns: Some(at),
            ..s
        };
        self.engine.inject(&s, self.injected, at)?;
        self.injected += 1;
        Ok(())
    }

    pub fn fleet(&self) -> &Fleet {
        &self.engine.fleet
    }

    /// Rows and labels emitted so far.
    pub fn stats(&self) -> Stats {
        Stats::from_counts(&self.engine.counts, self.engine.labels)
    }

    /// Processes currently tracked across the fleet (bounded: finished ones are recycled).
    pub fn live_processes(&self) -> usize {
        self.engine.live_procs()
    }
}
