//! Checkpoints: a consistent point-in-time copy of the database in a new directory.
//!
//! Order (each step durable before the next), in the new directory:
//! 1. create it (and any missing ancestor, each synced into its parent), write the
//!    `CHECKPOINT-PENDING` marker, sync it and the directory: from here until the last step the
//!    directory refuses to open ([`crate::Error::IncompleteCheckpoint`]);
//! 2. under the WAL lock (no write is half-committed then), take the super version, the last
//!    sequence number and the live WAL's bytes up to its end: the consistent point;
//! 3. hard-link (or copy and sync) every live table, which the super version keeps on disk;
//!    write every immutable memtable as a table (its WAL may be removed by a flush at any
//!    moment, its contents are in memory); write the live WAL's bytes under its own number
//!    and sync them;
//! 4. write a manifest naming exactly those tables, with the live WAL as the oldest one to
//!    replay; it is synced, and `CURRENT` is written and synced after it;
//! 5. remove the marker and sync the directory.
//!
//! The source database is only read.

use super::flush::write_table;
use super::open::create_dir;
use super::shared::Shared;
use crate::env::{join, Fs};
use crate::error::{Error, Result};
use crate::filename::{table_name, wal_name, CHECKPOINT_PENDING};
use crate::manifest::{ManifestState, ManifestWriter};
use crate::planted::{self, Bug};
use crate::stats::Counters;
use crate::sync;
use std::path::Path;

/// Bytes copied per read and append.
const COPY_CHUNK_BYTES: usize = 1 << 20;

pub(crate) fn checkpoint(shared: &Shared, dir: &Path) -> Result<()> {
    let fs: &dyn Fs = &*shared.env.fs;
    if fs
        .kind(dir)
        .map_err(|e| Error::io("stat", dir, e))?
        .is_some()
    {
        return Err(Error::InvalidArgument(format!(
            "{} exists; a checkpoint is written into a new directory",
            dir.display()
        )));
    }
    create_dir(fs, dir)?;
    let marker = join(dir, CHECKPOINT_PENDING);
    // The marker is empty: only its directory entry matters, and it is the first entry of the
    // new directory, so no later entry can survive a power loss without it.
    fs.create(&marker)
        .map_err(|e| Error::io("create", &marker, e))?;
    sync_dir(fs, dir)?;

    // The consistent point.
    let (sv, last_seq, wal_number, wal_bytes) = {
        let wal = sync::lock(&shared.wal);
        let sv = shared.super_version();
        let len = if planted::active(Bug::CheckpointMissesWalTail) {
            wal.writer.synced_len()
        } else {
            wal.writer.len()
        };
        let bytes = read_prefix(fs, wal.writer.path(), len)?;
        (sv, wal.last_seq, wal.writer.file_number(), bytes)
    };

    let mut state = ManifestState {
        last_seq,
        log_number: wal_number,
        ..ManifestState::default()
    };
    let mut max_number = wal_number;
    for (level, level_tables) in sv.version.levels.iter().enumerate() {
        for t in level_tables {
            let n = t.meta().number;
            let to = join(dir, &table_name(n));
            let linked = fs.link(t.path(), &to).is_ok();
            if linked {
                Counters::add(&shared.counters.checkpoint_tables_linked, 1);
            } else {
                copy_file(fs, t.path(), &to)?;
                Counters::add(&shared.counters.checkpoint_tables_copied, 1);
            }
            state.tables.insert(n, (level as u32, t.meta().clone()));
            max_number = max_number.max(n);
        }
    }
    // Immutable memtables, oldest first, become the newest level-0 tables (numbered above
    // every live one, newer ones higher).
    for imm in sv.imms.iter().rev() {
        if imm.is_empty() {
            continue;
        }
        let n = shared.new_file_number();
        let (t, _, _) = write_table(&shared.env, dir, &shared.opts, n, imm, &[], None)?;
        state.tables.insert(n, (0, t.meta().clone()));
        max_number = max_number.max(n);
    }
    let wal_path = join(dir, &wal_name(wal_number));
    write_file(fs, &wal_path, &wal_bytes)?;

    let manifest_number = shared.new_file_number();
    state.next_file = manifest_number.max(max_number) + 1;
    // The manifest's creation syncs the directory after writing it, making every entry before
    // it durable too: the linked and copied tables and the WAL copy.
    ManifestWriter::create(fs, dir, manifest_number, &state)?;
    fs.remove_file(&marker)
        .map_err(|e| Error::io("remove", &marker, e))?;
    // Durability point: without this directory fsync, the marker's removal could be undone by
    // a power loss, and an acknowledged checkpoint would refuse to open.
    if !planted::active(Bug::SkipCheckpointFinalDirSync) {
        sync_dir(fs, dir)?;
    }
    Counters::add(&shared.counters.checkpoints, 1);
    Ok(())
}

fn sync_dir(fs: &dyn Fs, dir: &Path) -> Result<()> {
    fs.sync_dir(dir).map_err(|e| Error::io("sync_dir", dir, e))
}

/// The first `len` bytes of the file at `path`.
fn read_prefix(fs: &dyn Fs, path: &Path, len: u64) -> Result<Vec<u8>> {
    let f = fs.open(path).map_err(|e| Error::io("open", path, e))?;
    let n = usize::try_from(len)
        .map_err(|_| Error::InvalidArgument(format!("{} is too large to copy", path.display())))?;
    let mut buf = vec![0u8; n];
    f.read_exact_at(&mut buf, 0)
        .map_err(|e| Error::io("read", path, e))?;
    Ok(buf)
}

/// Creates `to` holding `data`, synced.
fn write_file(fs: &dyn Fs, to: &Path, data: &[u8]) -> Result<()> {
    let f = fs.create(to).map_err(|e| Error::io("create", to, e))?;
    for chunk in data.chunks(COPY_CHUNK_BYTES) {
        f.append(chunk).map_err(|e| Error::io("append", to, e))?;
    }
    sync_copy(f.as_ref(), to)
}

/// Durability point: without this fsync, a copied table or WAL could lose its bytes at a power
/// loss after the checkpoint's manifest named it.
fn sync_copy(f: &dyn crate::env::File, path: &Path) -> Result<()> {
    if planted::active(Bug::SkipCheckpointCopySync) {
        return Ok(());
    }
    f.sync().map_err(|e| Error::io("sync", path, e))
}

/// Copies the file at `from` to a new file `to`, synced.
fn copy_file(fs: &dyn Fs, from: &Path, to: &Path) -> Result<()> {
    let src = fs.open(from).map_err(|e| Error::io("open", from, e))?;
    let len = src.len().map_err(|e| Error::io("stat", from, e))?;
    let dst = fs.create(to).map_err(|e| Error::io("create", to, e))?;
    let mut buf = vec![0u8; COPY_CHUNK_BYTES];
    let mut off = 0u64;
    while off < len {
        let n = (len - off).min(COPY_CHUNK_BYTES as u64) as usize;
        src.read_exact_at(&mut buf[..n], off)
            .map_err(|e| Error::io("read", from, e))?;
        dst.append(&buf[..n])
            .map_err(|e| Error::io("append", to, e))?;
        off += n as u64;
    }
    sync_copy(dst.as_ref(), to)
}
