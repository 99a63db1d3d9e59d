//! `sdb dump table|wal|manifest`: what a file holds, as text or JSON lines.

use crate::overlay::OverlayFs;
use crate::show;
use sedimentdb::internals::filename::{self, FileKind};
use sedimentdb::internals::key::{self, Kind};
use sedimentdb::internals::manifest::{self, VersionEdit, MANIFEST_MAGIC};
use sedimentdb::internals::record::{self as log, LogEnd};
use sedimentdb::internals::sstable::Table;
use sedimentdb::internals::wal::batch::decode_payload;
use sedimentdb::internals::wal::WAL_MAGIC;
use serde_json::json;
use std::path::Path;

/// How to print.
pub struct Style {
    pub json: bool,
    pub hex: bool,
    pub limit: Option<u64>,
    pub from: Option<Vec<u8>>,
    pub to: Option<Vec<u8>>,
}

impl Style {
    fn b(&self, x: &[u8]) -> String {
        show::bytes(x, self.hex)
    }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Put => "put",
        Kind::Delete => "delete",
        Kind::RangeDelete => "range_delete",
    }
}

/// The number a file's name gives, or its footer/header names.
fn number_of(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    filename::parse(name).and_then(FileKind::number)
}

pub fn table(path: &Path, st: &Style) -> Result<(), String> {
    let fs = OverlayFs::new();
    let n = match number_of(path) {
        Some(n) => n,
        None => {
            let d = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            d.len()
                .checked_sub(60)
                .and_then(|o| d.get(o..o + 8))
                .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
                .unwrap_or(0)
        }
    };
    let t = Table::open(&fs, path, n).map_err(|e| e.to_string())?;
    let m = t.meta();
    if st.json {
        println!(
            "{}",
            json!({"table": n, "format_version": t.format_version(), "entries": m.entries,
                   "tombstones": m.tombstones, "smallest_seq": m.smallest_seq,
                   "largest_seq": m.largest_seq, "size_bytes": m.size_bytes,
                   "raw_data_bytes": t.raw_data_bytes(), "range_tombstones": t.range_dels().cover_count()})
        );
    } else {
        println!(
            "table {n}: format {}, {} entries ({} tombstones), {} range tombstones, seq {}..={}, {} ({} of data before compression)",
            t.format_version(),
            m.entries,
            m.tombstones,
            t.range_dels().cover_count(),
            m.smallest_seq,
            m.largest_seq,
            show::size(m.size_bytes),
            show::size(t.raw_data_bytes())
        );
    }
    for f in t.range_dels().fragments() {
        for c in &f.covers {
            if st.json {
                println!(
                    "{}",
                    json!({"range_delete": {"start": st.b(&f.start), "end": st.b(&f.end), "seq": c.seq, "time_ms": c.time_ms}})
                );
            } else {
                println!(
                    "range delete [{}, {}) seq {} at {} ms",
                    st.b(&f.start),
                    st.b(&f.end),
                    c.seq,
                    c.time_ms
                );
            }
        }
    }
    let mut shown = 0u64;
    for h in t.data_blocks().collect::<Vec<_>>() {
        let entries = t.block_entries(h).map_err(|e| e.to_string())?;
        for (ik, v) in entries {
            let Some(p) = key::parse(&ik) else { continue };
            if !show::in_range(p.user_key, &st.from, &st.to) {
                continue;
            }
            if st.limit.is_some_and(|l| shown >= l) {
                return Ok(());
            }
            shown += 1;
            let kind = kind_name(p.kind);
            let deleted_at = (p.kind == Kind::Delete)
                .then(|| key::deletion_time(&v))
                .flatten();
            if st.json {
                let mut o =
                    json!({"key": st.b(p.user_key), "seq": p.seq, "kind": kind, "block": h.offset});
                if p.kind == Kind::Put {
                    o["value"] = json!(st.b(&v));
                } else if let Some(t) = deleted_at {
                    o["deleted_at_ms"] = json!(t);
                }
                println!("{o}");
            } else if p.kind == Kind::Put {
                println!("{} @{} put {}", st.b(p.user_key), p.seq, st.b(&v));
            } else {
                println!(
                    "{} @{} delete at {} ms",
                    st.b(p.user_key),
                    p.seq,
                    deleted_at.unwrap_or(0)
                );
            }
        }
    }
    Ok(())
}

pub fn wal(path: &Path, st: &Style) -> Result<(), String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let n = number_of(path)
        .or_else(|| {
            data.get(12..20)
                .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
        })
        .unwrap_or(0);
    let mut shown = 0u64;
    let mut err = None;
    let end = log::replay(&data, path, WAL_MAGIC, n, true, |off, payload| {
        if payload.is_empty() {
            if st.json {
                println!("{}", json!({"offset": off, "marker": true}));
            } else {
                println!("record at {off}: marker (seals the records before it)");
            }
            return Ok(());
        }
        let mut lines = Vec::new();
        let h = decode_payload(payload, log::file_version(&data), |seq, e| {
            if !show::in_range(e.key, &st.from, &st.to) {
                return;
            }
            lines.push((seq, kind_name(e.kind), e.key.to_vec(), e.value.to_vec(), e.kind));
        });
        let h = match h {
            Ok(h) => h,
            Err(reason) => {
                err = Some(format!("{} at offset {off}: {reason}", path.display()));
                return Ok(());
            }
        };
        if !st.json {
            println!(
                "record at {off}: batch seq {} with {} entries at {} ms",
                h.seq, h.count, h.time_ms
            );
        }
        for (seq, kind, k, v, kd) in lines {
            if st.limit.is_some_and(|l| shown >= l) {
                return Ok(());
            }
            shown += 1;
            if st.json {
                let mut o = json!({"offset": off, "seq": seq, "kind": kind, "key": st.b(&k), "time_ms": h.time_ms});
                match kd {
                    Kind::Put => o["value"] = json!(st.b(&v)),
                    Kind::RangeDelete => o["end"] = json!(st.b(&v)),
                    Kind::Delete => {}
                }
                println!("{o}");
            } else {
                match kd {
                    Kind::Put => println!("  {} @{seq} put {}", st.b(&k), st.b(&v)),
                    Kind::Delete => println!("  {} @{seq} delete", st.b(&k)),
                    Kind::RangeDelete => {
                        println!("  [{}, {}) @{seq} range delete", st.b(&k), st.b(&v))
                    }
                }
            }
        }
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    if let Some(e) = err {
        return Err(e);
    }
    let end_text = match end {
        LogEnd::Clean => "ends after its last record".to_string(),
        LogEnd::Zeros { offset } => {
            format!("records end at offset {offset}, zeros after (pre-sized)")
        }
        LogEnd::TornTail { offset, reason } => format!("torn tail at offset {offset}: {reason}"),
    };
    if st.json {
        println!("{}", json!({"end": end_text}));
    } else {
        println!("{end_text}");
    }
    Ok(())
}

fn edit_json(e: &VersionEdit, st: &Style) -> serde_json::Value {
    let added: Vec<_> = e
        .added
        .iter()
        .map(|(l, m)| json!({"level": l, "table": m.number, "size_bytes": m.size_bytes, "entries": m.entries,
                              "smallest": st.b(key::user_key(&m.smallest)), "largest": st.b(key::user_key(&m.largest))}))
        .collect();
    let deleted: Vec<_> = e
        .deleted
        .iter()
        .map(|(l, n)| json!({"level": l, "table": n}))
        .collect();
    json!({"next_file": e.next_file, "last_seq": e.last_seq, "log_number": e.log_number,
           "added": added, "deleted": deleted})
}

pub fn manifest(dir: &Path, st: &Style) -> Result<(), String> {
    let fs = OverlayFs::new();
    let n = manifest::read_current(&fs, dir).map_err(|e| e.to_string())?;
    let path = dir.join(filename::manifest_name(n));
    let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !st.json {
        println!("{} (CURRENT names it)", path.display());
    }
    let mut shown = 0u64;
    log::replay(&data, &path, MANIFEST_MAGIC, n, true, |off, payload| {
        if st.limit.is_some_and(|l| shown >= l) {
            return Ok(());
        }
        shown += 1;
        if payload.is_empty() {
            if !st.json {
                println!("record at {off}: vouches for the edits before it");
            }
            return Ok(());
        }
        let e = VersionEdit::decode(payload)
            .map_err(|r| sedimentdb::Error::corruption(&path, off, r))?;
        if st.json {
            let mut o = edit_json(&e, st);
            o["offset"] = json!(off);
            println!("{o}");
        } else {
            let mut parts = Vec::new();
            if let Some(v) = e.next_file {
                parts.push(format!("next_file {v}"));
            }
            if let Some(v) = e.last_seq {
                parts.push(format!("last_seq {v}"));
            }
            if let Some(v) = e.log_number {
                parts.push(format!("log_number {v}"));
            }
            for (l, m) in &e.added {
                parts.push(format!(
                    "add L{l} table {} ({}, {} entries, {}..{})",
                    m.number,
                    show::size(m.size_bytes),
                    m.entries,
                    st.b(key::user_key(&m.smallest)),
                    st.b(key::user_key(&m.largest))
                ));
            }
            for (l, t) in &e.deleted {
                parts.push(format!("delete L{l} table {t}"));
            }
            println!("edit at {off}: {}", parts.join(", "));
        }
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    Ok(())
}
