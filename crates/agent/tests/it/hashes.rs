//! The image hash cache: right values, cached, and recomputed when mtime or size change.

use rampart_agent::process::hashes::HashCache;
use std::io::Write;
use std::time::{Duration, SystemTime};

#[test]
fn hashes_are_the_known_digests() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("abc");
    std::fs::write(&path, b"abc").unwrap();
    let h = HashCache::default().hash_path(&path).unwrap().unwrap();
    assert_eq!(
        h.sha256,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(h.sha1, "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(h.md5, "900150983cd24fb0d6963f7d28e17f72");
    assert_eq!(h.size, 3);
}

#[test]
fn hash_cache_hits_then_invalidates_on_mtime_and_size_change() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("image");
    std::fs::write(&path, b"version one").unwrap();
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(base)
        .unwrap();
    let cache = HashCache::default();

    let first = cache.hash_path(&path).unwrap().unwrap();
    assert_eq!(cache.stats().computed, 1);
    let second = cache.hash_path(&path).unwrap().unwrap();
    assert_eq!(second, first);
    assert_eq!((cache.stats().computed, cache.stats().hits), (1, 1));

    // Same size, new content, new mtime: read again.
    std::fs::write(&path, b"version two").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(base + Duration::from_secs(5))
        .unwrap();
    let third = cache.hash_path(&path).unwrap().unwrap();
    assert_ne!(third.sha256, first.sha256);
    assert_eq!(cache.stats().computed, 2);

    // Size changed, mtime forced back to the same value: the size alone invalidates.
    let mut f = std::fs::File::options().append(true).open(&path).unwrap();
    f.write_all(b"!").unwrap();
    f.set_modified(base + Duration::from_secs(5)).unwrap();
    drop(f);
    let fourth = cache.hash_path(&path).unwrap().unwrap();
    assert_eq!(fourth.size, 12);
    assert_ne!(fourth.sha256, third.sha256);
    assert_eq!(cache.stats().computed, 3);
    assert_eq!(cache.hash_path(&path).unwrap().unwrap(), fourth);
    assert_eq!(cache.stats().computed, 3);
}

#[test]
fn files_over_the_cap_are_not_hashed() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("big");
    std::fs::write(&path, vec![7u8; 4096]).unwrap();
    let cache = HashCache::new(1024, 16);
    assert_eq!(cache.hash_path(&path).unwrap(), None);
    assert_eq!(cache.stats().computed, 0);
    // A directory is not an image either.
    assert_eq!(cache.hash_path(tmp.path()).unwrap(), None);
}
