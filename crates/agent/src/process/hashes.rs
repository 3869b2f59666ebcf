//! SHA-1, SHA-256 and MD5 of process images, cached by (device, inode, mtime, size): a binary
//! that runs a thousand times is read once, and a replaced or rewritten one is read again.

use crate::hex;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Default largest file hashed: bigger images are reported without hashes.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 100 << 20;
/// Default number of files remembered.
pub const DEFAULT_CAPACITY: usize = 16 * 1024;

/// The three hashes advanced hunting carries, in lower-case hex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hashes {
    pub sha1: String,
    pub sha256: String,
    pub md5: String,
    pub size: u64,
}

/// What identifies a file's content for the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FileKey {
    dev: u64,
    ino: u64,
    mtime_ns: i128,
    size: u64,
}

impl FileKey {
    fn of(meta: &std::fs::Metadata) -> FileKey {
        FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            size: meta.size(),
        }
    }
}

/// Cache counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    /// Files read and hashed.
    pub computed: u64,
}

pub struct HashCache {
    max_file_size: u64,
    capacity: usize,
    entries: Mutex<HashMap<FileKey, Hashes>>,
    hits: AtomicU64,
    computed: AtomicU64,
}

impl Default for HashCache {
    fn default() -> Self {
        HashCache::new(DEFAULT_MAX_FILE_SIZE, DEFAULT_CAPACITY)
    }
}

impl HashCache {
    pub fn new(max_file_size: u64, capacity: usize) -> HashCache {
        HashCache {
            max_file_size,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
            computed: AtomicU64::new(0),
        }
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            computed: self.computed.load(Ordering::Relaxed),
        }
    }

    /// Hashes of the file at `path`; `Ok(None)` for a file over the size cap or not regular.
    pub fn hash_path(&self, path: &Path) -> std::io::Result<Option<Hashes>> {
        self.hash_file(&File::open(path)?)
    }

    /// Hashes of an open file (read from its start whatever its position).
    pub fn hash_file(&self, file: &File) -> std::io::Result<Option<Hashes>> {
        let meta = file.metadata()?;
        if !meta.is_file() || meta.len() > self.max_file_size {
            return Ok(None);
        }
        let key = FileKey::of(&meta);
        if let Some(h) = self.lock().get(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(h.clone()));
        }
        let hashes = compute(file, self.max_file_size)?;
        self.computed.fetch_add(1, Ordering::Relaxed);
        // A file written while it was read gives hashes of neither version: not cached.
        let after = file.metadata().map(|m| FileKey::of(&m)).ok();
        if after == Some(key) {
            let mut entries = self.lock();
            if entries.len() >= self.capacity {
                // Starting over is cheaper to get right than an LRU, and the working set of
                // images on a host refills it within seconds.
                entries.clear();
            }
            entries.insert(key, hashes.clone());
        }
        Ok(Some(hashes))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<FileKey, Hashes>> {
        // The map is always consistent between statements; a panic elsewhere cannot break it.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Reads `file` from offset 0 with positioned reads, so the descriptor's offset (which any
/// duplicate shares) is neither used nor moved.
fn compute(file: &File, limit: u64) -> std::io::Result<Hashes> {
    use std::os::unix::fs::FileExt;
    let (mut s1, mut s256, mut m5) = (Sha1::new(), Sha256::new(), Md5::new());
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    while size <= limit {
        let n = match file.read_at(&mut buf, size) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        s1.update(&buf[..n]);
        s256.update(&buf[..n]);
        m5.update(&buf[..n]);
        size += n as u64;
    }
    Ok(Hashes {
        sha1: hex::encode(&s1.finalize()),
        sha256: hex::encode(&s256.finalize()),
        md5: hex::encode(&m5.finalize()),
        size,
    })
}
