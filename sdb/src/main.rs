//! `sdb`: the operator's tool for sedimentdb databases: inspect, verify, dump, quick reads and
//! writes, compaction, and salvage of a database that no longer opens.
//!
//! Exit status: 0 success (and for `verify`, sound; for `get`, found; for `salvage`, nothing left
//! behind); 1 the answer is no (`verify`: damage found; `get`: no such key; `salvage`: something
//! was left behind, the new database is written all the same); 2 bad arguments; 3 the command
//! failed (the error, one line, says which file, where and what was expected).
//!
//! Only `put`, `delete`, `compact` and `salvage` (into OUT) write. Every other command reads the
//! directory through a layer that keeps the engine's recovery writes in memory.

mod dump;
mod info;
mod overlay;
mod salvage;
mod show;
mod verify;

use clap::{Parser, Subcommand};
use sedimentdb::{Db, Env, Options, SystemClock};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "sdb",
    version,
    about = "Inspect, verify, dump and repair sedimentdb databases",
    long_about = "Inspect, verify, dump and repair sedimentdb databases.\n\n\
        Exit status: 0 success (verify: sound; get: found; salvage: nothing left behind); \
        1 the answer is no (verify: damage found; get: no such key; salvage: something was \
        left behind); 2 bad arguments; 3 the command failed.\n\n\
        Keys and values are printed with printable ASCII as is and other bytes as \\xNN \
        (or as hex with --hex), and parsed the same way.\n\n\
        Only put, delete, compact and salvage write; every other command leaves the \
        directory exactly as it was."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone, Default)]
struct Fmt {
    /// Print JSON (one object per line) for scripts.
    #[arg(long)]
    json: bool,
    /// Print and parse keys and values as hex.
    #[arg(long)]
    hex: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// Formats, levels and tables, WALs, the manifest, and the engine's statistics.
    Info {
        dir: PathBuf,
        #[command(flatten)]
        fmt: Fmt,
    },
    /// Read every byte of every table, WAL and manifest; check every checksum and invariant.
    Verify {
        dir: PathBuf,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
        #[command(flatten)]
        fmt: Fmt,
    },
    /// Print what a table, a WAL or a manifest holds.
    Dump {
        #[command(subcommand)]
        what: DumpCmd,
    },
    /// Print the value of a key.
    Get {
        dir: PathBuf,
        key: String,
        #[command(flatten)]
        fmt: Fmt,
    },
    /// Print the keys and values in a range (default: all).
    Scan {
        dir: PathBuf,
        /// `a..b` (b excluded), `a..`, `..b` or `..`.
        #[arg(long, default_value = "..")]
        range: String,
        /// Print at most this many entries.
        #[arg(long)]
        limit: Option<u64>,
        /// Newest first.
        #[arg(long)]
        reverse: bool,
        #[command(flatten)]
        fmt: Fmt,
    },
    /// Write a key (synced). WRITES.
    Put {
        dir: PathBuf,
        key: String,
        value: String,
        /// Create the database if DIR holds none.
        #[arg(long)]
        create: bool,
        #[command(flatten)]
        fmt: Fmt,
    },
    /// Delete a key (synced). WRITES.
    Delete {
        dir: PathBuf,
        key: String,
        #[command(flatten)]
        fmt: Fmt,
    },
    /// Compact the database, or a key range of it. WRITES.
    Compact {
        dir: PathBuf,
        /// `a..b`, `a..`, `..b` or `..` (default: everything).
        #[arg(long, default_value = "..")]
        range: String,
        #[command(flatten)]
        fmt: Fmt,
    },
    /// Build a new database in OUT from every table entry and WAL record of DIR that is still
    /// sound, and report what was left behind. Never changes DIR. WRITES OUT.
    Salvage {
        dir: PathBuf,
        out: PathBuf,
        #[command(flatten)]
        fmt: Fmt,
    },
}

#[derive(Subcommand)]
enum DumpCmd {
    /// Every entry and range tombstone of a table file.
    Table {
        file: PathBuf,
        #[command(flatten)]
        sel: Select,
    },
    /// Every record of a WAL file.
    Wal {
        file: PathBuf,
        #[command(flatten)]
        sel: Select,
    },
    /// Every edit of the manifest CURRENT names.
    Manifest {
        dir: PathBuf,
        #[command(flatten)]
        sel: Select,
    },
}

#[derive(clap::Args)]
struct Select {
    /// Print at most this many entries (or edits).
    #[arg(long)]
    limit: Option<u64>,
    /// Only keys in `a..b` (b excluded), `a..`, `..b` or `..`.
    #[arg(long, default_value = "..")]
    range: String,
    #[command(flatten)]
    fmt: Fmt,
}

/// A dump command's printer.
type DumpFn = fn(&Path, &dump::Style) -> Result<(), String>;

/// The outcome of a command: success, a "no", or a failure with its one-line error.
enum Done {
    Yes,
    No,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.cmd) {
        Ok(Done::Yes) => ExitCode::SUCCESS,
        Ok(Done::No) => ExitCode::from(1),
        Err(e) => {
            eprintln!("sdb: {e}");
            ExitCode::from(3)
        }
    }
}

/// Opens the database without changing it: recovery's writes stay in memory.
fn open_read(dir: &Path) -> Result<Db, String> {
    let env = Env::new(Arc::new(overlay::OverlayFs::new()), Arc::new(SystemClock));
    Db::open_with(env, dir, existing()).map_err(|e| e.to_string())
}

fn existing() -> Options {
    Options {
        create_if_missing: false,
        ..Options::default()
    }
}

fn open_write(dir: &Path, create: bool) -> Result<Db, String> {
    let o = Options {
        create_if_missing: create,
        ..Options::default()
    };
    Db::open(dir, o).map_err(|e| e.to_string())
}

/// `[from, to)` as range bounds.
fn bounds<'a>(
    from: &'a Option<Vec<u8>>,
    to: &'a Option<Vec<u8>>,
) -> (std::ops::Bound<&'a [u8]>, std::ops::Bound<&'a [u8]>) {
    use std::ops::Bound;
    (
        from.as_deref().map_or(Bound::Unbounded, Bound::Included),
        to.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
    )
}

fn key_arg(s: &str, fmt: &Fmt) -> Result<Vec<u8>, String> {
    show::parse(s, fmt.hex)
}

fn run(cmd: Cmd) -> Result<Done, String> {
    match cmd {
        Cmd::Info { dir, fmt } => info::info(&dir, fmt.json, fmt.hex).map(|_| Done::Yes),
        Cmd::Verify { dir, quiet, fmt } => {
            let r = verify::verify(&dir, quiet || fmt.json)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            if fmt.json {
                let problems: Vec<_> = r
                    .problems
                    .iter()
                    .map(|p| serde_json::json!({"file": p.file.display().to_string(), "offset": p.offset, "what": p.what}))
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({"sound": r.problems.is_empty(), "files": r.files, "bytes": r.bytes,
                                       "entries": r.entries, "problems": problems, "notes": r.notes})
                );
            } else {
                for p in &r.problems {
                    println!("DAMAGE: {p}");
                }
                for n in &r.notes {
                    println!("note: {n}");
                }
                println!(
                    "{}: {} files, {} read, {} entries checked: {}",
                    dir.display(),
                    r.files,
                    show::size(r.bytes),
                    r.entries,
                    if r.problems.is_empty() {
                        "sound".to_string()
                    } else {
                        format!("{} problems", r.problems.len())
                    }
                );
            }
            Ok(if r.problems.is_empty() {
                Done::Yes
            } else {
                Done::No
            })
        }
        Cmd::Dump { what } => {
            let (path, sel, f): (PathBuf, Select, DumpFn) = match what {
                DumpCmd::Table { file, sel } => (file, sel, dump::table),
                DumpCmd::Wal { file, sel } => (file, sel, dump::wal),
                DumpCmd::Manifest { dir, sel } => (dir, sel, dump::manifest),
            };
            let (from, to) = show::range(&sel.range, sel.fmt.hex)?;
            let st = dump::Style {
                json: sel.fmt.json,
                hex: sel.fmt.hex,
                limit: sel.limit,
                from,
                to,
            };
            f(&path, &st).map(|_| Done::Yes)
        }
        Cmd::Get { dir, key, fmt } => {
            let k = key_arg(&key, &fmt)?;
            let db = open_read(&dir)?;
            match db.get(&k).map_err(|e| e.to_string())? {
                Some(v) => {
                    if fmt.json {
                        println!(
                            "{}",
                            serde_json::json!({"key": show::bytes(&k, fmt.hex), "value": show::bytes(&v, fmt.hex)})
                        );
                    } else {
                        println!("{}", show::bytes(&v, fmt.hex));
                    }
                    Ok(Done::Yes)
                }
                None => {
                    eprintln!(
                        "sdb: no key {} in {}",
                        show::bytes(&k, fmt.hex),
                        dir.display()
                    );
                    Ok(Done::No)
                }
            }
        }
        Cmd::Scan {
            dir,
            range,
            limit,
            reverse,
            fmt,
        } => {
            let (from, to) = show::range(&range, fmt.hex)?;
            let db = open_read(&dir)?;
            let (lo, hi) = bounds(&from, &to);
            let scan = db.scan::<&[u8], _>((lo, hi));
            let it: Box<dyn Iterator<Item = _>> = if reverse {
                Box::new(scan.rev())
            } else {
                Box::new(scan)
            };
            for (n, e) in it.enumerate() {
                if limit.is_some_and(|l| n as u64 >= l) {
                    break;
                }
                let (k, v) = e.map_err(|e| e.to_string())?;
                if fmt.json {
                    println!(
                        "{}",
                        serde_json::json!({"key": show::bytes(&k, fmt.hex), "value": show::bytes(&v, fmt.hex)})
                    );
                } else {
                    println!(
                        "{} = {}",
                        show::bytes(&k, fmt.hex),
                        show::bytes(&v, fmt.hex)
                    );
                }
            }
            Ok(Done::Yes)
        }
        Cmd::Put {
            dir,
            key,
            value,
            create,
            fmt,
        } => {
            let db = open_write(&dir, create)?;
            db.put(key_arg(&key, &fmt)?, key_arg(&value, &fmt)?)
                .map_err(|e| e.to_string())?;
            db.close().map_err(|e| e.to_string())?;
            Ok(Done::Yes)
        }
        Cmd::Delete { dir, key, fmt } => {
            let db = open_write(&dir, false)?;
            db.delete(key_arg(&key, &fmt)?).map_err(|e| e.to_string())?;
            db.close().map_err(|e| e.to_string())?;
            Ok(Done::Yes)
        }
        Cmd::Compact { dir, range, fmt } => {
            let (from, to) = show::range(&range, fmt.hex)?;
            let db = open_write(&dir, false)?;
            let (lo, hi) = bounds(&from, &to);
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_message(format!("compacting {}", dir.display()));
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            let r = db.compact_range::<&[u8], _>((lo, hi));
            bar.finish_and_clear();
            r.map_err(|e| e.to_string())?;
            let st = db.stats();
            db.close().map_err(|e| e.to_string())?;
            println!("{st}");
            Ok(Done::Yes)
        }
        Cmd::Salvage { dir, out, fmt } => {
            let o = salvage::salvage(&dir, &out)?;
            o.print(fmt.json);
            Ok(if o.left.is_empty() {
                Done::Yes
            } else {
                Done::No
            })
        }
    }
}
