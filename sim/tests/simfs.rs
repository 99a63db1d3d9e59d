//! `SimFs`'s model of in-place writes and size changes at a power loss: what a pre-sized WAL
//! relies on (`docs/FAULTS.md`). Each choice a power loss asks is answered by a script.
use sedimentdb::Fs;
use sedimentdb_sim::SimFs;
use std::path::Path;

/// A synced 8 KiB file of zeros, then `write` in place, then a power loss answering `script`
/// (then 0). Returns the file's bytes after it.
fn after_power_loss(write: &[(u64, &[u8])], grow_to: Option<u64>, script: &[u64]) -> Vec<u8> {
    let fs = SimFs::new();
    fs.create_dir_all(Path::new("/d")).unwrap();
    let p = Path::new("/d/f");
    let f = fs.create(p).unwrap();
    f.set_len(8192).unwrap();
    f.sync().unwrap();
    fs.sync_dir(Path::new("/d")).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    for (at, bytes) in write {
        f.write_at(bytes, *at).unwrap();
    }
    if let Some(n) = grow_to {
        f.set_len(n).unwrap();
    }
    let mut answers = script.iter().copied();
    fs.power_loss(&mut |n| answers.next().unwrap_or(0).min(n - 1));
    fs.read_file(p).unwrap()
}

#[test]
fn an_unsynced_in_place_write_keeps_old_bytes_new_ones_or_a_tear() {
    let new = [7u8; 100];
    // Kept durable bytes (choice 0): the page reads as before, zeros.
    let old = after_power_loss(&[(5000, &new)], None, &[0]);
    assert_eq!(old.len(), 8192);
    assert!(old.iter().all(|b| *b == 0));
    // New bytes (choice 1).
    let kept = after_power_loss(&[(5000, &new)], None, &[1]);
    assert_eq!(&kept[5000..5100], &new[..]);
    // Torn at byte 950 of the page (page 1 starts at 4096, the write at 904 into it): 46
    // new bytes, then the stale zeros.
    let torn = after_power_loss(&[(5000, &new)], None, &[2, 950]);
    assert_eq!(&torn[5000..5046], &new[..46]);
    assert!(torn[5046..5100].iter().all(|b| *b == 0));
}

#[test]
fn a_synced_in_place_write_survives() {
    let fs = SimFs::new();
    fs.create_dir_all(Path::new("/d")).unwrap();
    let p = Path::new("/d/f");
    let f = fs.create(p).unwrap();
    f.set_len(4096).unwrap();
    f.write_at(b"record", 10).unwrap();
    f.sync().unwrap();
    fs.sync_dir(Path::new("/d")).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    fs.crash();
    let d = fs.read_file(p).unwrap();
    assert_eq!((d.len(), &d[10..16]), (4096, &b"record"[..]));
}

#[test]
fn an_unsynced_size_change_may_be_lost_or_kept_without_its_data() {
    // No page past the old size survives (choices 0, 0), then the size change is lost (0)...
    let lost = after_power_loss(&[], Some(16384), &[0, 0, 0]);
    assert_eq!(lost.len(), 8192);
    // ...or kept (1): the file is longer, the new space zeros.
    let kept = after_power_loss(&[(9000, b"tail")], Some(16384), &[0, 0, 1]);
    assert_eq!(kept.len(), 16384);
    assert!(kept[8192..].iter().all(|b| *b == 0));
}

#[test]
fn a_crash_armed_at_a_sync_fires_at_that_sync_and_not_before() {
    let fs = SimFs::new();
    fs.create_dir_all(Path::new("/d")).unwrap();
    let f = fs.create(Path::new("/d/f")).unwrap();
    fs.die_at_sync(2);
    f.write_at(b"one", 0).unwrap();
    f.sync().unwrap();
    // Other calls, directory syncs among them, do not count.
    fs.sync_dir(Path::new("/d")).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    f.write_at(b"two", 3).unwrap();
    assert!(!fs.is_dead());
    assert!(f.sync().is_err(), "the second sync is the crash point");
    assert!(fs.is_dead());
    assert!(f.write_at(b"x", 6).is_err(), "a dead machine does no I/O");
    // The first sync made its bytes durable; the second never happened.
    fs.power_loss(&mut |_| 0);
    assert_eq!(fs.durable_len(Path::new("/d/f")), Some(3));
}
