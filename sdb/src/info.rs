//! `sdb info DIR`: formats, levels and tables, WALs, the manifest, and the engine's own
//! statistics after a recovery done in memory (the directory is not changed).

use crate::overlay::OverlayFs;
use crate::show;
use crate::verify::listing;
use sedimentdb::internals::filename::{self, FileKind};
use sedimentdb::internals::key;
use sedimentdb::internals::manifest;
use sedimentdb::internals::sstable::Table;
use sedimentdb::{Db, Env, Options, SystemClock};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

fn header_version(path: &Path) -> Option<u32> {
    let d = std::fs::read(path).ok()?;
    d.get(8..12)
        .map(|v| u32::from_le_bytes([v[0], v[1], v[2], v[3]]))
}

pub fn info(dir: &Path, json_out: bool, hex: bool) -> Result<(), String> {
    let fs = OverlayFs::new();
    let files = listing(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let n = manifest::read_current(&fs, dir).map_err(|e| e.to_string())?;
    let mpath = dir.join(filename::manifest_name(n));
    let state = manifest::load(&fs, dir, n).map_err(|e| e.to_string())?;
    let msize = std::fs::metadata(&mpath).map_or(0, |m| m.len());
    let mut tables = Vec::new();
    for (num, (level, m)) in &state.tables {
        let path = dir.join(filename::table_name(*num));
        let (version, ranges, raw) = match Table::open(&fs, &path, *num) {
            Ok(t) => (
                Some(t.format_version()),
                t.range_dels().cover_count(),
                t.raw_data_bytes(),
            ),
            Err(_) => (None, 0, 0),
        };
        tables.push((*level, m.clone(), version, ranges, raw));
    }
    tables.sort_by_key(|t| (t.0, t.1.number));
    let wals: Vec<(String, u64, Option<u32>)> = files
        .iter()
        .filter(|(_, k)| matches!(k, Some(FileKind::Wal(_))))
        .map(|(name, _)| {
            let p = dir.join(name);
            (
                name.clone(),
                std::fs::metadata(&p).map_or(0, |m| m.len()),
                header_version(&p),
            )
        })
        .collect();
    let pending = files
        .iter()
        .any(|(_, k)| *k == Some(FileKind::CheckpointPending));
    // The engine's view: a recovery done in memory.
    let env = Env::new(Arc::new(fs), Arc::new(SystemClock));
    let stats = Db::open_with(
        env,
        dir,
        Options {
            create_if_missing: false,
            ..Options::default()
        },
    )
    .map(|db| db.stats());
    let b = |k: &[u8]| show::bytes(key::user_key(k), hex);
    if json_out {
        let ts: Vec<_> = tables
            .iter()
            .map(|(l, m, v, r, raw)| {
                json!({"level": l, "table": m.number, "format_version": v, "size_bytes": m.size_bytes,
                       "raw_data_bytes": raw, "entries": m.entries, "tombstones": m.tombstones,
                       "range_tombstones": r, "smallest": b(&m.smallest), "largest": b(&m.largest),
                       "smallest_seq": m.smallest_seq, "largest_seq": m.largest_seq})
            })
            .collect();
        let ws: Vec<_> = wals
            .iter()
            .map(|(n, s, v)| json!({"file": n, "size_bytes": s, "format_version": v}))
            .collect();
        let out = json!({
            "dir": dir.display().to_string(),
            "manifest": {"file": filename::manifest_name(n), "size_bytes": msize,
                         "format_version": header_version(&mpath),
                         "next_file": state.next_file, "last_seq": state.last_seq, "log_number": state.log_number},
            "tables": ts, "wals": ws,
            "incomplete_checkpoint": pending,
            "stats": match &stats {
                Ok(s) => json!({"text": s.to_string(), "write_amplification": s.write_amplification()}),
                Err(e) => json!({"error": e.to_string()}),
            },
        });
        println!("{out}");
        return Ok(());
    }
    println!("database {}", dir.display());
    println!(
        "manifest {} ({}, log format {}): next file {}, last sequence {}, WALs from {}",
        filename::manifest_name(n),
        show::size(msize),
        header_version(&mpath).map_or("?".into(), |v| v.to_string()),
        state.next_file,
        state.last_seq,
        state.log_number
    );
    println!("tables:");
    println!(
        "  {:<6} {:>7} {:>6} {:>10} {:>10} {:>9} {:>6} {:>6}  key range",
        "level", "table", "format", "size", "raw data", "entries", "tombs", "ranges"
    );
    for (l, m, v, r, raw) in &tables {
        println!(
            "  L{:<5} {:>7} {:>6} {:>10} {:>10} {:>9} {:>6} {:>6}  {} .. {}",
            l,
            m.number,
            v.map_or("?".into(), |v| v.to_string()),
            show::size(m.size_bytes),
            show::size(*raw),
            m.entries,
            m.tombstones,
            r,
            b(&m.smallest),
            b(&m.largest)
        );
    }
    println!("WALs:");
    for (name, size, v) in &wals {
        println!(
            "  {name} ({}, log format {})",
            show::size(*size),
            v.map_or("?".into(), |v| v.to_string())
        );
    }
    println!(
        "snapshots: none on disk (they live in the memory of an open Db); checkpoint in progress: {}",
        if pending { "yes (CHECKPOINT-PENDING: not a consistent copy)" } else { "no" }
    );
    println!(
        "options: none are stored on disk; each open passes its own (Options::default() here)"
    );
    match stats {
        Ok(s) => println!("engine statistics after an in-memory recovery:\n{s}"),
        Err(e) => println!("the engine cannot open it: {e}"),
    }
    Ok(())
}
