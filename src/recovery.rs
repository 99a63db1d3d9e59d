//! Opening a database: validate the directory, take the lock, load the manifest, open the
//! tables, replay the WALs, write the replayed data as a table, start a fresh manifest and WAL,
//! and remove obsolete files.
//!
//! A failed open changes nothing on disk until the lock is held and the existing state has been
//! read and checked, so opening a foreign directory or a newer format version is harmless.

use crate::db::{Recovered, SuperVersion, WalState};
use crate::env::{join, Env, Fs};
use crate::error::{Error, Result};
use crate::filename::{self, manifest_name, table_name, wal_name, FileKind, CURRENT, LOCK};
use crate::flush::write_table;
use crate::key::Kind;
use crate::manifest::{self, ManifestState, ManifestWriter};
use crate::memtable::Memtable;
use crate::options::Options;
use crate::record::{self as log, LogEnd, LogWriter};
use crate::sstable::Table;
use crate::sync::Arc;
use crate::version::Version;
use crate::wal::batch;
use crate::wal::WAL_MAGIC;
use std::path::Path;

fn list(fs: &dyn Fs, dir: &Path) -> Result<Vec<(String, Option<FileKind>)>> {
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

pub(crate) fn recover(env: Env, dir: &Path, opts: Options) -> Result<Recovered> {
    opts.validate()?;
    let fs: &dyn Fs = &*env.fs;
    let exists = inspect(fs, dir, &opts)?;
    if !exists {
        fs.create_dir_all(dir)
            .map_err(|e| Error::io("create_dir", dir, e))?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            // Durability point: without this, a new database directory could vanish.
            fs.sync_dir(parent)
                .map_err(|e| Error::io("sync_dir", parent, e))?;
        }
    }
    let lock = fs.lock(&join(dir, LOCK)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            Error::Locked {
                path: dir.to_path_buf(),
            }
        } else {
            Error::io("lock", join(dir, LOCK), e)
        }
    })?;
    // Under the lock, read again: another process may have changed things meanwhile.
    let entries = list(fs, dir)?;
    let mut state = if entries.iter().any(|(_, k)| *k == Some(FileKind::Current)) {
        let n = manifest::read_current(fs, dir)?;
        manifest::load(fs, dir, n)?
    } else {
        ManifestState {
            next_file: 1,
            ..ManifestState::default()
        }
    };
    let max_seen = entries
        .iter()
        .filter_map(|(_, k)| match k {
            Some(FileKind::Wal(n) | FileKind::Table(n) | FileKind::Manifest(n)) => Some(*n),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let mut next_file = state.next_file.max(max_seen + 1).max(1);

    // Open every live table and check it against the manifest.
    let mut version = Version::default();
    for (level, meta) in state.tables.values() {
        let path = join(dir, &table_name(meta.number));
        let t = Table::open(fs, &path, meta.number).map_err(|e| match e {
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
        version.levels[*level as usize].push(Arc::new(t));
    }
    version.levels[0].sort_by_key(|t| std::cmp::Reverse(t.meta().number));
    for level in version.levels.iter_mut().skip(1) {
        level.sort_by(|a, b| crate::key::compare(&a.meta().smallest, &b.meta().smallest));
    }
    if !version.levels_are_disjoint() {
        let n = manifest::read_current(fs, dir)?;
        return Err(Error::corruption(
            join(dir, &manifest_name(n)),
            0,
            "the manifest places overlapping tables in one level below level 0",
        ));
    }

    // Replay the WALs the manifest still needs, oldest first.
    let mut wals: Vec<u64> = entries
        .iter()
        .filter_map(|(_, k)| match k {
            Some(FileKind::Wal(n)) if *n >= state.log_number => Some(*n),
            _ => None,
        })
        .collect();
    wals.sort_unstable();
    let replayed = Memtable::new(0);
    let mut last_seq = state.last_seq;
    let mut torn_bytes = 0u64;
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
    for (i, (n, path, data)) in logs.iter().enumerate() {
        let (n, path) = (*n, path.as_path());
        if data.is_empty() && i >= last_with_records {
            continue; // created, then a power loss before its header reached the disk
        }
        let tail_allowed = i >= last_with_records;
        let end = log::replay(data, path, WAL_MAGIC, n, tail_allowed, |off, payload| {
            if payload.is_empty() {
                return Ok(()); // a close marker: vouches for the records before it
            }
            // Tombstones carry their batch's time (bytes 8..16 of the payload header).
            let time: [u8; 8] = payload
                .get(8..16)
                .and_then(|t| t.try_into().ok())
                .unwrap_or_default();
            let h = batch::decode_payload(payload, |seq, e| {
                let value = if e.kind == Kind::Delete {
                    &time[..]
                } else {
                    e.value
                };
                replayed.insert(e.key, seq, e.kind, value);
            })
            .map_err(|r| Error::corruption(path, off, r))?;
            if h.count > 0 {
                last_seq = last_seq.max(h.seq + u64::from(h.count) - 1);
            }
            Ok(())
        })?;
        if let LogEnd::TornTail { offset, .. } = end {
            torn_bytes += data.len() as u64 - offset;
        }
    }

    // Write what was replayed as a level-0 table, so the old WALs can go.
    let wal_number = next_file;
    let manifest_number = next_file + 1;
    next_file += 2;
    let mut sv_version = version;
    if !replayed.is_empty() {
        let number = next_file;
        next_file += 1;
        let t = write_table(&env, dir, &opts, number, &replayed)?;
        state
            .apply(&crate::manifest::VersionEdit {
                added: vec![(0, t.meta().clone())],
                ..Default::default()
            })
            .map_err(|r| Error::corruption(dir, 0, r))?;
        sv_version.levels[0].insert(0, t);
    }
    state.last_seq = last_seq;
    state.log_number = wal_number;
    state.next_file = next_file;
    let manifest = ManifestWriter::create(fs, dir, manifest_number, &state)?;

    // The new manifest is durable: everything it does not name is obsolete.
    for (name, k) in &entries {
        let obsolete = match k {
            Some(FileKind::Wal(_) | FileKind::Manifest(_) | FileKind::CurrentTmp) => true,
            Some(FileKind::Table(n)) => !state.tables.contains_key(n),
            _ => false,
        };
        if obsolete {
            remove(fs, dir, name)?;
        }
    }

    let path = join(dir, &wal_name(wal_number));
    let file = fs
        .create(&path)
        .map_err(|e| Error::io("create", &path, e))?;
    let writer = LogWriter::new(file, path, WAL_MAGIC, wal_number)?;
    // Durability point: without this directory fsync, the WAL and every synced write in it
    // could vanish at a power loss.
    fs.sync_dir(dir)
        .map_err(|e| Error::io("sync_dir", dir, e))?;

    Ok(Recovered {
        sv: SuperVersion {
            mem: Arc::new(Memtable::new(wal_number)),
            imms: Vec::new(),
            version: Arc::new(sv_version),
        },
        wal: WalState { writer, last_seq },
        manifest,
        next_file,
        torn_bytes,
        env,
        dir: dir.to_path_buf(),
        opts,
        lock,
    })
}
