//! Batch ids already stored, so a retried batch is acknowledged without being stored twice.
//!
//! Ids of batches still in the log are recovered from the log itself; when a flush folds them
//! into Parquet (and deletes the log), they are appended to `batch_ids.log` first. Ids are
//! remembered for a window (default 6 hours): agents retry within minutes, and an unbounded set
//! would grow with every batch ever sent.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Being written; a concurrent retry must wait for the outcome.
    InFlight,
    /// Durable in log segment `segment`, not yet in `batch_ids.log`.
    InLog { segment: u64, seen: i64 },
    /// Recorded in `batch_ids.log`.
    Persisted { seen: i64 },
}

/// What [`BatchIds::reserve`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Reservation {
    Reserved,
    AlreadyStored,
    InFlight,
}

pub struct BatchIds {
    path: PathBuf,
    ids: HashMap<(String, String), State>,
    /// Lines in the log file, to know when rewriting it pays.
    log_lines: usize,
}

impl BatchIds {
    /// Loads the persisted ids seen after `since` (unix seconds) and rewrites the file without
    /// the expired ones.
    pub fn load(path: &Path, since: i64) -> std::io::Result<BatchIds> {
        let mut ids = HashMap::new();
        match File::open(path) {
            Ok(f) => {
                for line in BufReader::new(f).lines() {
                    let line = line?;
                    let mut parts = line.splitn(3, '\t');
                    let (Some(seen), Some(tenant), Some(id)) =
                        (parts.next(), parts.next(), parts.next())
                    else {
                        continue; // a torn last line
                    };
                    let Ok(seen) = seen.parse::<i64>() else {
                        continue;
                    };
                    if seen >= since {
                        ids.insert(
                            (tenant.to_owned(), id.to_owned()),
                            State::Persisted { seen },
                        );
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut me = BatchIds {
            path: path.to_owned(),
            ids,
            log_lines: 0,
        };
        me.rewrite()?;
        Ok(me)
    }

    fn rewrite(&mut self) -> std::io::Result<()> {
        let tmp = self.path.with_extension("log.tmp");
        let mut f = std::io::BufWriter::new(File::create(&tmp)?);
        let mut n = 0;
        for ((tenant, id), state) in &self.ids {
            if let State::Persisted { seen } = state {
                writeln!(f, "{seen}\t{tenant}\t{id}")?;
                n += 1;
            }
        }
        f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        self.log_lines = n;
        Ok(())
    }

    pub fn reserve(&mut self, tenant: &str, id: &str) -> Reservation {
        match self.ids.get(&(tenant.to_owned(), id.to_owned())) {
            Some(State::InFlight) => Reservation::InFlight,
            Some(_) => Reservation::AlreadyStored,
            None => {
                self.ids
                    .insert((tenant.to_owned(), id.to_owned()), State::InFlight);
                Reservation::Reserved
            }
        }
    }

    pub fn release(&mut self, tenant: &str, id: &str) {
        self.ids.remove(&(tenant.to_owned(), id.to_owned()));
    }

    /// Marks an id durable in log segment `segment` (also used when replaying the log).
    pub fn stored(&mut self, tenant: &str, id: &str, segment: u64, seen: i64) {
        self.ids.insert(
            (tenant.to_owned(), id.to_owned()),
            State::InLog { segment, seen },
        );
    }

    /// Appends the ids of segments `..=segment` to the file (durably) before those segments are
    /// deleted, and forgets ids older than `since`.
    pub fn persist_through(&mut self, segment: u64, since: i64) -> std::io::Result<()> {
        self.ids.retain(|_, s| match *s {
            State::Persisted { seen } => seen >= since,
            _ => true,
        });
        let live = self
            .ids
            .values()
            .filter(|s| matches!(s, State::Persisted { .. }))
            .count();
        let mut f = std::io::BufWriter::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?,
        );
        for ((tenant, id), state) in self.ids.iter_mut() {
            if let State::InLog { segment: s, seen } = *state
                && s <= segment
            {
                writeln!(f, "{seen}\t{tenant}\t{id}")?;
                *state = State::Persisted { seen };
                self.log_lines += 1;
            }
        }
        f.into_inner().map_err(|e| e.into_error())?.sync_data()?;
        if self.log_lines > 4 * live.max(1024) {
            self.rewrite()?;
        }
        Ok(())
    }
}
