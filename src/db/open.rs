//! Opening a database, as named steps: check what is at the path without writing
//! ([`inspect`]), create the directory if new, take the lock, load the manifest, open and check
//! the live tables, replay the WALs the manifest still needs, write what was replayed as a
//! level-0 table, start a fresh manifest, remove obsolete files, and start a fresh WAL.
//!
//! A failed open changes nothing on disk until the lock is held and the existing state has been
//! read and checked, so opening a foreign directory or a newer format version is harmless.

use super::flush::write_table;
use super::shared::{Parts, SuperVersion, WalState};
use crate::env::{join, Env, FileLock, Fs};
use crate::error::{Error, Result};
use crate::filename::{self, manifest_name, table_name, wal_name, FileKind, CURRENT, LOCK};
use crate::manifest::{self, ManifestState, ManifestWriter, VersionEdit};
use crate::memtable::Memtable;
use crate::options::{Compression, Options};
use crate::planted::{self, Bug};
use crate::record::{self as log, LogEnd, LogWriter};
use crate::sstable::{BlockCache, Table};
use crate::sync::Arc;
use crate::version::Version;
use crate::wal::batch;
use crate::wal::WAL_MAGIC;
use std::path::{Path, PathBuf};

/// What opening produced: the parts of the shared state, the directory lock, and what
/// recovery cut.
pub(crate) struct Opened {
    pub parts: Parts,
    pub lock: Box<dyn FileLock>,
    /// Bytes cut from torn WAL tails.
    pub torn_bytes: u64,
    /// WALs whose records ended before zeros (pre-sized space).
    pub zero_tails: u64,
    /// WALs that held records.
    pub wals_replayed: u64,
    /// LZ4-compressed WAL records replayed.
    pub compressed_records: u64,
}

type Listing = Vec<(String, Option<FileKind>)>;

fn list(fs: &dyn Fs, dir: &Path) -> Result<Listing> {
    let names = fs.list_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    Ok(names
        .into_iter()
        .map(|n| {
            let k = filename::parse(&n);
            (n, k)
        })
        .collect())
}

/// Checks what is at `dir` without writing anything. Returns whether a database exists.
fn inspect(fs: &dyn Fs, dir: &Path, opts: &Options) -> Result<bool> {
    match fs.kind(dir).map_err(|e| Error::io("stat", dir, e))? {
        Some(false) => {
            return Err(Error::NotADatabase {
                path: dir.to_path_buf(),
                reason: "it is a file, not a directory".into(),
            })
        }
        None => {
            if !opts.create_if_missing {
                return Err(Error::InvalidArgument(format!(
                    "{} does not exist and create_if_missing is false",
                    dir.display()
                )));
            }
            return Ok(false);
        }
        Some(true) => {}
    }
    let entries = list(fs, dir)?;
    if entries
        .iter()
        .any(|(_, k)| *k == Some(FileKind::CheckpointPending))
    {
        return Err(Error::IncompleteCheckpoint {
            dir: dir.to_path_buf(),
        });
    }
    if entries.iter().any(|(_, k)| *k == Some(FileKind::Current)) {
        let ours = entries.iter().any(|(_, k)| {
            matches!(
                k,
                Some(FileKind::Manifest(_) | FileKind::Wal(_) | FileKind::Table(_))
            )
        });
        match manifest::read_current(fs, dir) {
            // Beside our own files, a CURRENT without our magic is damage, not a foreign file.
            Err(Error::NotADatabase { .. }) if ours => {
                return Err(Error::corruption(
                    join(dir, CURRENT),
                    0,
                    "CURRENT lacks the sedimentdb magic, but the directory holds sedimentdb files",
                ));
            }
            r => {
                r?;
            }
        }
        if opts.error_if_exists {
            return Err(Error::InvalidArgument(format!(
                "a database exists at {} and error_if_exists is set",
                dir.display()
            )));
        }
        return Ok(true);
    }
    // A WAL or table is only ever written after CURRENT exists (a new database writes its
    // manifest and CURRENT first), so finding one without CURRENT means CURRENT was lost.
    if let Some((name, _)) = entries
        .iter()
        .find(|(_, k)| matches!(k, Some(FileKind::Wal(_) | FileKind::Table(_))))
    {
        return Err(Error::corruption(
            join(dir, CURRENT),
            0,
            format!("CURRENT is missing, but the directory holds {name}"),
        ));
    }
    if let Some((name, _)) = entries.iter().find(|(_, k)| k.is_none()) {
        return Err(Error::NotADatabase {
            path: dir.to_path_buf(),
            reason: format!("it has no CURRENT file and holds {name:?}, which is not ours"),
        });
    }
    if !opts.create_if_missing {
        return Err(Error::InvalidArgument(format!(
            "{} holds no database and create_if_missing is false",
            dir.display()
        )));
    }
    Ok(false)
}

fn remove(fs: &dyn Fs, dir: &Path, name: &str) -> Result<()> {
    let p = join(dir, name);
    match fs.remove_file(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", &p, e)),
    }
}

/// Opens the database in `dir`, recovering what the last run left.
pub(crate) fn open(env: Env, dir: &Path, opts: Options) -> Result<Opened> {
    // A planted check's memory of trivial moves lives in the process, not on disk.
    planted::note_moved(None);
    opts.validate()?;
    let fs: &dyn Fs = &*env.fs;
    if !inspect(fs, dir, &opts)? {
        create_dir(fs, dir)?;
    }
    let lock = take_lock(fs, dir)?;
    // Under the lock, read again: another process may have changed things meanwhile.
    let entries = list(fs, dir)?;
    let mut state = load_manifest(fs, dir, &entries)?;
    let mut next_file = state.next_file.max(max_number(&entries) + 1).max(1);
    let cache = BlockCache::new(opts.block_cache_bytes);
    let version = open_tables(fs, dir, &mut state, &cache)?;
    let replayed = replay_wals(fs, dir, &entries, state.log_number, state.last_seq)?;

    // Write what was replayed as a level-0 table, so the old WALs can go.
    let wal_number = next_file;
    let manifest_number = next_file + 1;
    next_file += 2;
    let mut version = version;
    if !replayed.mem.is_empty() {
        let number = next_file;
        next_file += 1;
        let (t, _, _) = write_table(&env, dir, &opts, number, &replayed.mem, &[], cache.clone())?;
        state
            .apply(&VersionEdit {
                added: vec![(0, t.meta().clone())],
                ..Default::default()
            })
            .map_err(|r| Error::corruption(dir, 0, r))?;
        version = version.with_l0(t);
    }
    state.last_seq = replayed.last_seq;
    state.log_number = wal_number;
    state.next_file = next_file;
    let manifest = ManifestWriter::create(fs, dir, manifest_number, &state)?;
    // The new manifest is durable: everything it does not name is obsolete.
    remove_obsolete_files(fs, dir, &entries, &state)?;
    let writer = create_wal(fs, dir, wal_number, &opts)?;
    Ok(Opened {
        parts: Parts {
            sv: SuperVersion {
                mem: Arc::new(Memtable::sized(wal_number, opts.memtable_size_bytes)),
                imms: Vec::new(),
                version: Arc::new(version),
            },
            wal: WalState {
                writer,
                last_seq: replayed.last_seq,
            },
            manifest,
            next_file,
            block_cache: cache,
            env,
            dir: dir.to_path_buf(),
            opts,
        },
        lock,
        torn_bytes: replayed.torn_bytes,
        zero_tails: replayed.zero_tails,
        wals_replayed: replayed.wals,
        compressed_records: replayed.compressed,
    })
}

/// The parent of `path` as a directory to sync: `.` for a relative path of one component.
fn parent_dir(path: &Path) -> Option<PathBuf> {
    let p = path.parent()?;
    Some(if p.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        p.to_path_buf()
    })
}

/// Creates `dir` and any missing ancestors, making each new entry durable in its parent.
pub(crate) fn create_dir(fs: &dyn Fs, dir: &Path) -> Result<()> {
    // The ancestors that do not exist yet, outermost last.
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur.filter(|d| !d.as_os_str().is_empty()) {
        if fs.kind(d).map_err(|e| Error::io("stat", d, e))?.is_some() {
            break;
        }
        missing.push(d.to_path_buf());
        cur = d.parent();
    }
    fs.create_dir_all(dir)
        .map_err(|e| Error::io("create_dir", dir, e))?;
    if planted::active(Bug::SyncOnlyImmediateParent) {
        // The old mistake: only the database directory's own parent, and none for a relative
        // path of one component.
        missing.truncate(1);
        missing.retain(|d| d.parent().is_some_and(|p| !p.as_os_str().is_empty()));
    }
    for d in missing.iter().rev() {
        if let Some(parent) = parent_dir(d).filter(|_| !planted::active(Bug::SkipNewDirSync)) {
            // Durability point: without this, a new database directory (or an ancestor the
            // open created) could vanish at a power loss, and every synced write in it.
            fs.sync_dir(&parent)
                .map_err(|e| Error::io("sync_dir", &parent, e))?;
        }
    }
    Ok(())
}

fn take_lock(fs: &dyn Fs, dir: &Path) -> Result<Box<dyn FileLock>> {
    fs.lock(&join(dir, LOCK)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            Error::Locked {
                path: dir.to_path_buf(),
            }
        } else {
            Error::io("lock", join(dir, LOCK), e)
        }
    })
}

fn has_current(entries: &Listing) -> bool {
    entries.iter().any(|(_, k)| *k == Some(FileKind::Current))
}

/// The largest file number in the directory (0 if none).
fn max_number(entries: &Listing) -> u64 {
    entries
        .iter()
        .filter_map(|(_, k)| k.and_then(FileKind::number))
        .max()
        .unwrap_or(0)
}

/// The manifest `CURRENT` names, or the empty state of a new database.
fn load_manifest(fs: &dyn Fs, dir: &Path, entries: &Listing) -> Result<ManifestState> {
    if has_current(entries) {
        let n = manifest::read_current(fs, dir)?;
        manifest::load(fs, dir, n)
    } else {
        Ok(ManifestState {
            next_file: 1,
            ..ManifestState::default()
        })
    }
}

/// Opens every live table, checks it against the manifest and the level rules, and raises
/// `state.last_seq` to the newest sequence they hold.
fn open_tables(
    fs: &dyn Fs,
    dir: &Path,
    state: &mut ManifestState,
    cache: &Option<Arc<BlockCache>>,
) -> Result<Version> {
    let mut tables = Vec::with_capacity(state.tables.len());
    for (level, meta) in state.tables.values() {
        let path = join(dir, &table_name(meta.number));
        let t = Table::open_cached(fs, &path, meta.number, cache.clone()).map_err(|e| match e {
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Error::corruption(&path, 0, "the manifest names this table but it is missing")
            }
            e => e,
        })?;
        let m = t.meta();
        if m != meta {
            return Err(Error::corruption(
                &path,
                0,
                format!(
                    "table disagrees with the manifest: it holds {} entries in {} bytes, the \
                     manifest says {} entries in {} bytes (or the key or sequence ranges differ)",
                    m.entries, m.size_bytes, meta.entries, meta.size_bytes
                ),
            ));
        }
        state.last_seq = state.last_seq.max(m.largest_seq);
        tables.push((*level as usize, Arc::new(t)));
    }
    let version = Version::from_tables(tables);
    if !version.levels_are_disjoint() {
        let n = manifest::read_current(fs, dir)?;
        return Err(Error::corruption(
            join(dir, &manifest_name(n)),
            0,
            "the manifest places overlapping tables in one level below level 0",
        ));
    }
    Ok(version)
}

/// What the WALs held.
struct Replayed {
    mem: Memtable,
    last_seq: u64,
    torn_bytes: u64,
    zero_tails: u64,
    /// WALs that held records.
    wals: u64,
    compressed: u64,
}

/// Replays every WAL numbered `log_number` or above, oldest first, into one memtable.
fn replay_wals(
    fs: &dyn Fs,
    dir: &Path,
    entries: &Listing,
    log_number: u64,
    last_seq: u64,
) -> Result<Replayed> {
    let mut wals: Vec<u64> = entries
        .iter()
        .filter_map(|(_, k)| match k {
            Some(FileKind::Wal(n)) if *n >= log_number => Some(*n),
            _ => None,
        })
        .collect();
    wals.sort_unstable();
    if planted::active(Bug::ReplayOnlyOldestWal) {
        wals.truncate(1);
    }
    let mut logs = Vec::with_capacity(wals.len());
    for &n in &wals {
        let path = join(dir, &wal_name(n));
        let file = fs.open(&path).map_err(|e| Error::io("open", &path, e))?;
        let data = log::read_all(file.as_ref(), &path)?;
        logs.push((n, path, data));
    }
    // Every WAL was synced whole before a newer one got its first record, so only the WALs after
    // the last one holding records may end torn (a rotation that failed, or a power loss, can
    // leave a newer WAL that is empty or holds only a torn header).
    let last_with_records = logs
        .iter()
        .rposition(|(n, _, data)| log::holds_records(data, *n))
        .unwrap_or(0);
    let mut r = Replayed {
        mem: Memtable::new(0),
        last_seq,
        torn_bytes: 0,
        zero_tails: 0,
        wals: 0,
        compressed: 0,
    };
    for (i, (n, path, data)) in logs.iter().enumerate() {
        let tail_allowed = i >= last_with_records;
        if data.is_empty() && tail_allowed {
            continue; // created, then a power loss before its header reached the disk
        }
        let mut sealed = false;
        let version = log::file_version(data);
        let (end, compressed) =
            log::replay_counted(data, path, WAL_MAGIC, *n, tail_allowed, |off, payload| {
                sealed = payload.is_empty();
                if payload.is_empty() {
                    return Ok(()); // a marker: vouches for the records before it
                }
                let h = batch::apply_payload(payload, version, &r.mem)
                    .map_err(|reason| Error::corruption(path, off, reason))?;
                if h.count > 0 {
                    r.last_seq = r.last_seq.max(h.seq + u64::from(h.count) - 1);
                }
                Ok(())
            })?;
        r.compressed += compressed;
        if log::holds_records(data, *n) {
            r.wals += 1;
        }
        // A log older than the newest one holding records was sealed with a marker before the
        // next was created (log format 3): without it, its tail was lost after that.
        if i < last_with_records && version >= 3 && !sealed {
            let at = match end {
                LogEnd::Zeros { offset } | LogEnd::TornTail { offset, .. } => offset,
                LogEnd::Clean => data.len() as u64,
            };
            return Err(Error::corruption(
                path,
                at,
                "an older WAL ends without the marker that seals it before a newer one: \
                 records after this offset were lost",
            ));
        }
        match end {
            LogEnd::TornTail { offset, reason } => {
                let cut = data.len() as u64 - offset;
                ::log::warn!(
                    "{}: cut a torn unsynced tail of {cut} bytes at offset {offset}: {reason}",
                    path.display()
                );
                r.torn_bytes += cut;
            }
            LogEnd::Zeros { .. } => r.zero_tails += 1,
            LogEnd::Clean => {}
        }
    }
    Ok(r)
}

/// Removes every file the new manifest does not need: old WALs and manifests, a leftover
/// `CURRENT.tmp`, and tables no longer live.
fn remove_obsolete_files(
    fs: &dyn Fs,
    dir: &Path,
    entries: &Listing,
    state: &ManifestState,
) -> Result<()> {
    for (name, k) in entries {
        let obsolete = match k {
            Some(FileKind::Wal(_) | FileKind::Manifest(_) | FileKind::CurrentTmp) => true,
            Some(FileKind::Table(n)) => !state.tables.contains_key(n),
            _ => false,
        };
        if obsolete {
            remove(fs, dir, name)?;
        }
    }
    Ok(())
}

/// Creates WAL `number`, with its header, pre-sized and compressing as `opts` say, and makes
/// its directory entry durable.
pub(crate) fn create_wal(
    fs: &dyn Fs,
    dir: &Path,
    number: u64,
    opts: &Options,
) -> Result<LogWriter> {
    let path = join(dir, &wal_name(number));
    let file = fs
        .create(&path)
        .map_err(|e| Error::io("create", &path, e))?;
    let presize = opts.wal_preallocate_bytes;
    let mut writer = LogWriter::new_presized(file, path, WAL_MAGIC, number, presize)?;
    writer.set_lz4(opts.wal_compression == Compression::Lz4);
    // Durability point: without this directory fsync, the WAL and every synced write in it
    // could vanish at a power loss.
    if !planted::active(Bug::SkipWalDirSync) {
        fs.sync_dir(dir)
            .map_err(|e| Error::io("sync_dir", dir, e))?;
    }
    Ok(writer)
}
