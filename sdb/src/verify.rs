//! `sdb verify`: every byte of every table, WAL and manifest read and checked, and the
//! invariants the engine relies on.

use crate::overlay::OverlayFs;
use crate::show;
use indicatif::{ProgressBar, ProgressStyle};
use sedimentdb::internals::filename::{self, FileKind};
use sedimentdb::internals::key;
use sedimentdb::internals::manifest::{self, ManifestState};
use sedimentdb::internals::record::{self as log, LogEnd};
use sedimentdb::internals::sstable::{Table, TableMeta};
use sedimentdb::internals::wal::batch::decode_payload;
use sedimentdb::internals::wal::WAL_MAGIC;
use std::path::{Path, PathBuf};

/// One problem: a file, an offset in it, and what was expected.
#[derive(Debug, Clone)]
pub struct Problem {
    pub file: PathBuf,
    pub offset: u64,
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at offset {}: {}",
            self.file.display(),
            self.offset,
            self.what
        )
    }
}

/// What verify found.
#[derive(Debug, Default)]
pub struct Report {
    pub problems: Vec<Problem>,
    /// Findings that do not make the database damaged (orphan files the next open removes, a
    /// torn unsynced WAL tail the next open cuts).
    pub notes: Vec<String>,
    pub files: u64,
    pub bytes: u64,
    pub entries: u64,
}

impl Report {
    fn problem(&mut self, file: &Path, offset: u64, what: impl Into<String>) {
        self.problems.push(Problem {
            file: file.to_path_buf(),
            offset,
            what: what.into(),
        });
    }

    fn error(&mut self, e: sedimentdb::Error, file: &Path) {
        match e {
            sedimentdb::Error::Corruption {
                file,
                offset,
                reason,
            } => self.problem(&file, offset, reason),
            other => self.problem(file, 0, other.to_string()),
        }
    }
}

/// The directory's files by kind.
pub fn listing(dir: &Path) -> std::io::Result<Vec<(String, Option<FileKind>)>> {
    let mut v: Vec<(String, Option<FileKind>)> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .map(|n| {
            let k = filename::parse(&n);
            (n, k)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(v)
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

/// Verifies the database in `dir`, showing progress on stderr unless `quiet`.
pub fn verify(dir: &Path, quiet: bool) -> std::io::Result<Report> {
    let fs = OverlayFs::new();
    let mut r = Report::default();
    let files = listing(dir)?;
    let total: u64 = files.iter().map(|(n, _)| file_len(&dir.join(n))).sum();
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    bar.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {bytes}/{total_bytes} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let state = check_manifest(&fs, dir, &files, &mut r);
    bar.set_message("tables");
    if let Some(state) = &state {
        check_tables(&fs, dir, state, &mut r, &bar);
        check_levels(dir, state, &mut r);
        check_wals(dir, &files, state.log_number, &mut r, &bar);
        for (name, kind) in &files {
            match kind {
                Some(FileKind::Table(n)) if !state.tables.contains_key(n) => r.notes.push(format!(
                    "{name}: a table the manifest does not name (left by a crash; the next open removes it)"
                )),
                Some(FileKind::Wal(n)) if *n < state.log_number => r.notes.push(format!(
                    "{name}: a WAL older than the manifest's log number {} (the next open removes it)",
                    state.log_number
                )),
                Some(FileKind::CheckpointPending) => r.problem(
                    &dir.join(name),
                    0,
                    "an interrupted checkpoint's marker: this directory is not a consistent copy",
                ),
                None if name != "LOCK" => r.notes.push(format!("{name}: not a sedimentdb file")),
                _ => {}
            }
        }
    }
    bar.finish_and_clear();
    Ok(r)
}

/// `CURRENT` and the manifest it names; other manifests are noted as obsolete.
fn check_manifest(
    fs: &OverlayFs,
    dir: &Path,
    files: &[(String, Option<FileKind>)],
    r: &mut Report,
) -> Option<ManifestState> {
    let current = dir.join(filename::CURRENT);
    r.files += 1;
    r.bytes += file_len(&current);
    let n = match manifest::read_current(fs, dir) {
        Ok(n) => n,
        Err(e) => {
            r.error(e, &current);
            return None;
        }
    };
    for (name, kind) in files {
        if let Some(FileKind::Manifest(m)) = kind {
            if *m != n {
                r.notes.push(format!(
                    "{name}: an obsolete manifest (CURRENT names {})",
                    filename::manifest_name(n)
                ));
            }
        }
    }
    let path = dir.join(filename::manifest_name(n));
    r.files += 1;
    r.bytes += file_len(&path);
    match manifest::load(fs, dir, n) {
        Ok(s) => Some(s),
        Err(e) => {
            r.error(e, &path);
            None
        }
    }
}

fn check_tables(
    fs: &OverlayFs,
    dir: &Path,
    state: &ManifestState,
    r: &mut Report,
    bar: &ProgressBar,
) {
    for (n, (level, want)) in &state.tables {
        let path = dir.join(filename::table_name(*n));
        if !path.is_file() {
            r.problem(
                &path,
                0,
                format!("missing: the manifest names it at level {level}"),
            );
            continue;
        }
        r.files += 1;
        r.bytes += file_len(&path);
        bar.inc(file_len(&path));
        let t = match Table::open(fs, &path, *n) {
            Ok(t) => t,
            Err(e) => {
                r.error(e, &path);
                continue;
            }
        };
        compare_meta(&path, t.meta(), want, r);
        let mut prev: Option<Vec<u8>> = None;
        let mut entries = 0u64;
        for h in t.data_blocks().collect::<Vec<_>>() {
            match t.block_entries(h) {
                Ok(es) => {
                    for (k, _) in es {
                        if prev.as_ref().is_some_and(|p| key::compare(p, &k).is_ge()) {
                            r.problem(&path, h.offset, "keys out of order");
                        }
                        prev = Some(k);
                        entries += 1;
                    }
                }
                Err(e) => r.error(e, &path),
            }
        }
        r.entries += entries;
        if entries != want.entries && r.problems.iter().all(|p| p.file != path) {
            r.problem(
                &path,
                0,
                format!(
                    "holds {entries} entries, the manifest says {}",
                    want.entries
                ),
            );
        }
    }
}

fn compare_meta(path: &Path, got: &TableMeta, want: &TableMeta, r: &mut Report) {
    let mut g = got.clone();
    g.size_bytes = file_len(path);
    if g != *want {
        r.problem(
            path,
            0,
            format!(
                "what the table holds ({} entries, {} bytes, keys {}..{}) differs from the manifest ({} entries, {} bytes, keys {}..{})",
                g.entries,
                g.size_bytes,
                show::bytes(key::user_key(&g.smallest), false),
                show::bytes(key::user_key(&g.largest), false),
                want.entries,
                want.size_bytes,
                show::bytes(key::user_key(&want.smallest), false),
                show::bytes(key::user_key(&want.largest), false),
            ),
        );
    }
}

/// Tables of each level below 0 are sorted and disjoint.
fn check_levels(dir: &Path, state: &ManifestState, r: &mut Report) {
    let mut levels: std::collections::BTreeMap<u32, Vec<&TableMeta>> = Default::default();
    for (level, m) in state.tables.values() {
        levels.entry(*level).or_default().push(m);
    }
    for (level, mut ts) in levels {
        if level == 0 {
            continue;
        }
        ts.sort_by(|a, b| key::compare(&a.smallest, &b.smallest));
        for w in ts.windows(2) {
            let (a, b) = (w[0], w[1]);
            let (au, bu) = (key::user_key(&a.largest), key::user_key(&b.smallest));
            let disjoint = au < bu || (au == bu && key::is_range_sentinel(&a.largest));
            if !disjoint {
                r.problem(
                    &dir.join(filename::table_name(b.number)),
                    0,
                    format!(
                        "overlaps table {} in level {level} (a level's tables must be disjoint)",
                        a.number
                    ),
                );
            }
        }
    }
}

/// Every WAL the manifest still needs, replayed and decoded as recovery would.
fn check_wals(
    dir: &Path,
    files: &[(String, Option<FileKind>)],
    log_number: u64,
    r: &mut Report,
    bar: &ProgressBar,
) {
    bar.set_message("WALs");
    let mut logs: Vec<(u64, PathBuf, Vec<u8>)> = Vec::new();
    for (name, kind) in files {
        if let Some(FileKind::Wal(n)) = kind {
            if *n >= log_number {
                let p = dir.join(name);
                match std::fs::read(&p) {
                    Ok(d) => logs.push((*n, p, d)),
                    Err(e) => r.problem(&p, 0, format!("cannot be read: {e}")),
                }
            }
        }
    }
    logs.sort_by_key(|l| l.0);
    let last = logs
        .iter()
        .rposition(|(n, _, d)| log::holds_records(d, *n))
        .unwrap_or(0);
    for (i, (n, path, data)) in logs.iter().enumerate() {
        r.files += 1;
        r.bytes += data.len() as u64;
        bar.inc(data.len() as u64);
        let tail_allowed = i >= last;
        if data.is_empty() && tail_allowed {
            continue;
        }
        let mut sealed = false;
        let mut entries = 0u64;
        let end = log::replay(data, path, WAL_MAGIC, *n, tail_allowed, |off, payload| {
            sealed = payload.is_empty();
            if !payload.is_empty() {
                let h = decode_payload(payload, log::file_version(data), |_, _| ())
                    .map_err(|reason| sedimentdb::Error::corruption(path, off, reason))?;
                entries += u64::from(h.count);
            }
            Ok(())
        });
        r.entries += entries;
        let version = data
            .get(8..12)
            .map_or(0, |v| u32::from_le_bytes([v[0], v[1], v[2], v[3]]));
        match end {
            Ok(end) => {
                if i < last && version >= 3 && !sealed {
                    r.problem(
                        path,
                        0,
                        "an older WAL ends without its seal marker: its tail was lost",
                    );
                }
                if let LogEnd::TornTail { offset, reason } = end {
                    r.notes.push(format!(
                        "{}: torn unsynced tail at offset {offset} ({reason}); the next open cuts {} bytes",
                        path.display(),
                        data.len() as u64 - offset
                    ));
                }
            }
            Err(e) => r.error(e, path),
        }
    }
}
