//! `sdb salvage DIR OUT`: a new database in OUT from every table entry and WAL record of DIR
//! that still proves sound (its checksum holds), and an exact account of what was left behind.
//! DIR is only read.

use crate::overlay::OverlayFs;
use crate::verify::listing;
use sedimentdb::internals::filename::FileKind;
use sedimentdb::internals::key::{self, Kind};
use sedimentdb::internals::manifest;
use sedimentdb::internals::rangedel::{Fragments, RangeTombstone};
use sedimentdb::internals::record as log;
use sedimentdb::internals::sstable::Table;
use sedimentdb::internals::wal::batch::decode_payload;
use sedimentdb::internals::wal::WAL_MAGIC;
use sedimentdb::{Db, Options, WriteBatch, WriteOptions};
use serde_json::json;
use std::path::{Path, PathBuf};

/// A part of a file salvage could not use.
#[derive(Debug, Clone)]
pub struct LeftBehind {
    pub file: PathBuf,
    pub from: u64,
    pub to: u64,
    /// Entries known lost (`None`: unknown, the damage hides how many).
    pub entries: Option<u64>,
    pub why: String,
}

/// What salvage did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub tables_read: u64,
    pub wals_read: u64,
    pub versions: u64,
    pub keys_written: u64,
    pub left: Vec<LeftBehind>,
    /// Files not used because the intact manifest says they are obsolete.
    pub obsolete: Vec<PathBuf>,
}

impl Outcome {
    pub fn print(&self, json_out: bool) {
        if json_out {
            let left: Vec<_> = self
                .left
                .iter()
                .map(|l| {
                    json!({"file": l.file.display().to_string(), "from": l.from, "to": l.to,
                                "entries": l.entries, "why": l.why})
                })
                .collect();
            println!(
                "{}",
                json!({"tables_read": self.tables_read, "wals_read": self.wals_read,
                       "versions": self.versions, "keys_written": self.keys_written,
                       "left_behind": left,
                       "obsolete": self.obsolete.iter().map(|p| p.display().to_string()).collect::<Vec<_>>()})
            );
            return;
        }
        println!(
            "salvaged {} live keys from {} versions in {} tables and {} WALs",
            self.keys_written, self.versions, self.tables_read, self.wals_read
        );
        for p in &self.obsolete {
            println!("not used (obsolete by the manifest): {}", p.display());
        }
        if self.left.is_empty() {
            println!("left behind: nothing");
        }
        for l in &self.left {
            let n = l
                .entries
                .map_or("an unknown number of entries".to_string(), |n| {
                    format!("{n} entries")
                });
            println!(
                "left behind: {} bytes {}..{} ({n}): {}",
                l.file.display(),
                l.from,
                l.to,
                l.why
            );
        }
    }
}

struct Version {
    key: Vec<u8>,
    seq: u64,
    put: Option<Vec<u8>>,
}

pub fn salvage(dir: &Path, out: &Path) -> Result<Outcome, String> {
    if out.exists() && std::fs::read_dir(out).map_or(true, |mut d| d.next().is_some()) {
        return Err(format!(
            "{} exists and is not empty: salvage writes a new database there",
            out.display()
        ));
    }
    let fs = OverlayFs::new();
    let files = listing(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // An intact manifest says which files are obsolete (their data may have been deleted
    // since); without one, every file is used.
    let state = manifest::read_current(&fs, dir)
        .and_then(|n| manifest::load(&fs, dir, n))
        .ok();
    let mut o = Outcome::default();
    let mut versions: Vec<Version> = Vec::new();
    let mut ranges: Vec<RangeTombstone> = Vec::new();
    for (name, kind) in &files {
        let path = dir.join(name);
        let len = std::fs::metadata(&path).map_or(0, |m| m.len());
        match kind {
            Some(FileKind::Table(n)) => {
                if state.as_ref().is_some_and(|s| !s.tables.contains_key(n)) {
                    o.obsolete.push(path);
                    continue;
                }
                o.tables_read += 1;
                let t = match Table::open(&fs, &path, *n) {
                    Ok(t) => t,
                    Err(e) => {
                        let entries = state
                            .as_ref()
                            .and_then(|s| s.tables.get(n))
                            .map(|(_, m)| m.entries);
                        o.left.push(LeftBehind {
                            file: path,
                            from: 0,
                            to: len,
                            entries,
                            why: format!("the table does not open: {e}"),
                        });
                        continue;
                    }
                };
                t.range_dels().tombstones_into(&mut ranges);
                for h in t.data_blocks().collect::<Vec<_>>() {
                    match t.block_entries(h) {
                        Ok(es) => {
                            for (ik, v) in es {
                                let Some(p) = key::parse(&ik) else { continue };
                                versions.push(Version {
                                    key: p.user_key.to_vec(),
                                    seq: p.seq,
                                    put: (p.kind == Kind::Put).then_some(v),
                                });
                            }
                        }
                        Err(e) => o.left.push(LeftBehind {
                            file: path.clone(),
                            from: h.offset,
                            to: h.offset + h.len + 4,
                            entries: None,
                            why: format!("a damaged data block: {e}"),
                        }),
                    }
                }
            }
            Some(FileKind::Wal(n)) => {
                if state.as_ref().is_some_and(|s| *n < s.log_number) {
                    o.obsolete.push(path);
                    continue;
                }
                o.wals_read += 1;
                let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                let mut records = 0u64;
                let r = log::replay(&data, &path, WAL_MAGIC, *n, true, |off, payload| {
                    if payload.is_empty() {
                        return Ok(());
                    }
                    let mut batch = Vec::new();
                    let mut rs = Vec::new();
                    let h =
                        decode_payload(payload, log::file_version(&data), |seq, e| match e.kind {
                            Kind::RangeDelete => rs.push((seq, e.key.to_vec(), e.value.to_vec())),
                            kind => batch.push(Version {
                                key: e.key.to_vec(),
                                seq,
                                put: (kind == Kind::Put).then(|| e.value.to_vec()),
                            }),
                        })
                        .map_err(|reason| sedimentdb::Error::corruption(&path, off, reason))?;
                    records += 1;
                    versions.extend(batch);
                    ranges.extend(rs.into_iter().map(|(seq, start, end)| RangeTombstone {
                        start,
                        end,
                        seq,
                        time_ms: h.time_ms,
                    }));
                    Ok(())
                });
                match r {
                    Ok(log::LogEnd::TornTail { offset, reason }) => o.left.push(LeftBehind {
                        file: path,
                        from: offset,
                        to: len,
                        entries: None,
                        why: format!("a torn tail, never synced: {reason}"),
                    }),
                    Ok(_) => {}
                    Err(sedimentdb::Error::Corruption { offset, reason, .. }) => {
                        o.left.push(LeftBehind {
                            file: path,
                            from: offset,
                            to: len,
                            entries: None,
                            why: format!(
                                "damage after {records} sound records (the rest of the log cannot be framed): {reason}"
                            ),
                        })
                    }
                    Err(e) => o.left.push(LeftBehind {
                        file: path,
                        from: 0,
                        to: len,
                        entries: None,
                        why: e.to_string(),
                    }),
                }
            }
            _ => {}
        }
    }
    o.versions = versions.len() as u64;
    versions.sort_by(|a, b| a.key.cmp(&b.key).then(b.seq.cmp(&a.seq)));
    let frags = Fragments::build(ranges);
    let db = Db::open(
        out,
        Options {
            error_if_exists: true,
            ..Options::default()
        },
    )
    .map_err(|e| e.to_string())?;
    let mut batch = WriteBatch::new();
    let mut last: Option<&[u8]> = None;
    for v in &versions {
        if last == Some(&v.key[..]) {
            continue;
        }
        last = Some(&v.key);
        let covered = frags.max_seq_at(&v.key, key::SEQ_MAX) > v.seq;
        if let (Some(val), false) = (&v.put, covered) {
            batch.put(&v.key, val);
            o.keys_written += 1;
            if batch.len() >= 1000 {
                let b = std::mem::take(&mut batch);
                db.write(b, &WriteOptions { sync: false })
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    db.write(batch, &WriteOptions { sync: false })
        .map_err(|e| e.to_string())?;
    db.flush().map_err(|e| e.to_string())?;
    db.close().map_err(|e| e.to_string())?;
    Ok(o)
}
