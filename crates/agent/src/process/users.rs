//! User names from `/etc/passwd`, re-read when the file changes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::SystemTime;

/// uid → name, from a passwd file.
pub struct Users {
    path: PathBuf,
    loaded: Option<(SystemTime, u64)>,
    names: HashMap<u32, String>,
}

impl Users {
    pub fn new(path: impl Into<PathBuf>) -> Users {
        Users {
            path: path.into(),
            loaded: None,
            names: HashMap::new(),
        }
    }

    /// The name of `uid`, if the passwd file has it.
    pub fn name(&mut self, uid: u32) -> Option<String> {
        self.refresh();
        self.names.get(&uid).cloned()
    }

    fn refresh(&mut self) {
        let Ok(meta) = std::fs::metadata(&self.path) else {
            return;
        };
        let stamp = (
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
        );
        if self.loaded == Some(stamp) {
            return;
        }
        if let Ok(text) = std::fs::read_to_string(&self.path) {
            self.names = parse_passwd(&text);
            self.loaded = Some(stamp);
        }
    }
}

/// `name:x:uid:…` lines; malformed lines are skipped, and the first name of a uid wins (as
/// getpwuid does).
pub fn parse_passwd(text: &str) -> HashMap<u32, String> {
    let mut names = HashMap::new();
    for line in text.lines() {
        let mut f = line.split(':');
        let (Some(name), Some(_), Some(uid)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if name.is_empty() || name.starts_with('#') {
            continue;
        }
        if let Ok(uid) = uid.parse() {
            names.entry(uid).or_insert_with(|| name.to_owned());
        }
    }
    names
}
