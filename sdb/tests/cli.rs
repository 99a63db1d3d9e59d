//! `sdb` run as a user runs it: the binary spawned on real directories, healthy and damaged.
use sedimentdb::internals::sstable::Table;
use sedimentdb::{Db, Options, StdFs, WriteBatch, WriteOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sdb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sdb"))
        .args(args)
        .output()
        .expect("sdb runs")
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

fn value(i: u32) -> Vec<u8> {
    format!("value of {i} ")
        .repeat(1 + (i % 4) as usize)
        .into_bytes()
}

/// A database of 3,000 unique keys: 2,000 in tables (after a flush and a compaction, then a
/// flush), 1,000 in the WAL. Returns what it holds.
fn make(dir: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let opts = Options {
        memtable_size_bytes: 64 << 10,
        block_size_bytes: 1024,
        ..Options::default()
    };
    let db = Db::open(dir, opts).unwrap();
    let mut want = BTreeMap::new();
    let mut put = |db: &Db, range: std::ops::Range<u32>| {
        let mut b = WriteBatch::new();
        for i in range {
            b.put(key(i), value(i));
            want.insert(key(i), value(i));
        }
        db.write(b, &WriteOptions::default()).unwrap();
    };
    put(&db, 0..1000);
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    put(&db, 1000..2000);
    db.flush().unwrap();
    put(&db, 2000..3000);
    db.close().unwrap();
    want
}

/// Every file's name and bytes: a command that says it does not write must leave this as it
/// was.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

/// The directory's manifest file.
fn manifest(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("MANIFEST-")
        })
        .unwrap()
}

fn read_all(dir: &Path) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, sedimentdb::Error> {
    let db = Db::open(
        dir,
        Options {
            create_if_missing: false,
            ..Options::default()
        },
    )?;
    db.iter().collect()
}

fn flip(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    b[at] ^= 0x20;
    std::fs::write(path, b).unwrap();
}

#[test]
fn read_commands_answer_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let want = make(&dir);
    let d = dir.to_str().unwrap();
    let before = snapshot(&dir);
    let info = sdb(&["info", d]);
    assert_eq!(code(&info), 0, "{}", err(&info));
    let text = out(&info);
    assert!(
        text.contains("L1") && text.contains(".wal") && text.contains("MANIFEST-"),
        "{text}"
    );
    assert!(text.contains("write amplification"), "{text}");
    let j = sdb(&["info", d, "--json"]);
    let v: serde_json::Value = serde_json::from_str(out(&j).trim()).unwrap();
    assert!(!v["tables"].as_array().unwrap().is_empty());
    let ver = sdb(&["verify", d, "--quiet"]);
    assert_eq!(code(&ver), 0, "{}{}", out(&ver), err(&ver));
    assert!(out(&ver).contains("sound"), "{}", out(&ver));
    let g = sdb(&["get", d, "key02501"]);
    assert_eq!(
        (code(&g), out(&g).trim()),
        (0, "value of 2501 value of 2501")
    );
    assert_eq!(code(&sdb(&["get", d, "nokey"])), 1);
    let s = sdb(&["scan", d, "--range", "key00010..key00013"]);
    assert_eq!(out(&s).lines().count(), 3, "{}", out(&s));
    let s = sdb(&["scan", d, "--reverse", "--limit", "2", "--json"]);
    let lines: Vec<serde_json::Value> = out(&s)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["key"], "key02999");
    assert_eq!(lines.len(), 2);
    let t = files(&dir, "sst");
    let dt = sdb(&[
        "dump",
        "table",
        t[0].to_str().unwrap(),
        "--limit",
        "5",
        "--json",
    ]);
    assert_eq!(code(&dt), 0, "{}", err(&dt));
    let rows: Vec<serde_json::Value> = out(&dt)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 6, "a header and 5 entries");
    assert!(rows[1]["key"].as_str().unwrap().starts_with("key"));
    let hex = sdb(&[
        "dump",
        "table",
        t[0].to_str().unwrap(),
        "--limit",
        "1",
        "--hex",
    ]);
    assert!(out(&hex).contains("6b6579"), "keys in hex: {}", out(&hex));
    let w = files(&dir, "wal");
    let dw = sdb(&[
        "dump",
        "wal",
        w[0].to_str().unwrap(),
        "--range",
        "key02000..key02002",
    ]);
    assert_eq!(code(&dw), 0, "{}", err(&dw));
    assert!(
        out(&dw).contains("key02001 @") && !out(&dw).contains("key02002 @"),
        "{}",
        out(&dw)
    );
    let dm = sdb(&["dump", "manifest", d]);
    assert!(out(&dm).contains("add L"), "{}", out(&dm));
    assert_eq!(
        snapshot(&dir),
        before,
        "a read command changed the directory"
    );
    assert_eq!(read_all(&dir).unwrap(), want);
}

#[test]
fn write_commands_write_synced() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let d = dir.to_str().unwrap();
    assert_eq!(
        code(&sdb(&["put", d, "a", "1"])),
        3,
        "no database, no --create"
    );
    assert_eq!(code(&sdb(&["put", "--create", d, "a", "1"])), 0);
    assert_eq!(code(&sdb(&["put", d, "b\\x00", "2"])), 0);
    assert_eq!(code(&sdb(&["delete", d, "a"])), 0);
    let c = sdb(&["compact", d]);
    assert_eq!(code(&c), 0, "{}", err(&c));
    let got = read_all(&dir).unwrap();
    assert_eq!(got, BTreeMap::from([(b"b\x00".to_vec(), b"2".to_vec())]));
    let s = sdb(&["scan", d]);
    assert_eq!(out(&s).trim(), "b\\x00 = 2");
}

#[test]
fn verify_calls_damage_damage_and_the_engine_does_not_serve_it() {
    // A table's data block, the manifest, a synced WAL record: each found, with file and offset.
    for target in ["sst", "manifest", "wal"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("db");
        make(&dir);
        let victim = match target {
            "manifest" => manifest(&dir),
            ext => files(&dir, ext)[0].clone(),
        };
        flip(&victim, 40);
        let v = sdb(&["verify", dir.to_str().unwrap(), "--quiet"]);
        assert_eq!(code(&v), 1, "{target}: {}", out(&v));
        let name = victim.file_name().unwrap().to_str().unwrap();
        assert!(
            out(&v)
                .lines()
                .any(|l| l.starts_with("DAMAGE:") && l.contains(name) && l.contains("offset")),
            "{target}: {}",
            out(&v)
        );
        assert!(read_all(&dir).is_err(), "{target}: damaged data was served");
    }
    let e = sdb(&["verify", "/nonexistent/sdb-test"]);
    assert_eq!(code(&e), 3);
    assert_eq!(err(&e).lines().count(), 1, "{}", err(&e));
}

#[test]
fn help_is_complete_and_bad_arguments_are_refused() {
    let h = sdb(&["--help"]);
    assert_eq!(code(&h), 0);
    for c in [
        "info",
        "verify",
        "dump",
        "get",
        "scan",
        "put",
        "delete",
        "compact",
        "salvage",
        "Exit status",
    ] {
        assert!(out(&h).contains(c), "--help lacks {c}");
    }
    assert_eq!(code(&sdb(&["frobnicate"])), 2);
    assert_eq!(code(&sdb(&["scan", "x", "--range", "nodots"])), 3);
}

/// The keys held in the data block of `table` at block index `i`.
fn block_keys(table: &Path, i: usize) -> (u64, Vec<Vec<u8>>) {
    let n: u64 = table
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let t = Table::open(&StdFs, table, n).unwrap();
    let h = t.data_blocks().nth(i).unwrap();
    let keys = t
        .block_entries(h)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k[..k.len() - 8].to_vec())
        .collect();
    (h.offset, keys)
}

#[test]
fn salvage_recovers_what_is_sound_and_accounts_for_the_rest() {
    // 1. A damaged CURRENT: nothing else is damaged, so everything comes back.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let want = make(&dir);
    flip(&dir.join("CURRENT"), 21);
    assert!(read_all(&dir).is_err());
    let before = snapshot(&dir);
    let o = tmp.path().join("out1");
    let s = sdb(&["salvage", dir.to_str().unwrap(), o.to_str().unwrap()]);
    assert_eq!(code(&s), 0, "{}{}", out(&s), err(&s));
    assert!(out(&s).contains("left behind: nothing"), "{}", out(&s));
    assert_eq!(
        read_all(&o).unwrap(),
        want,
        "nothing sound may be left behind"
    );
    assert_eq!(snapshot(&dir), before, "salvage changed its source");

    // 2. A damaged data block: exactly its keys are lost, and the report names the block.
    let dir = tmp.path().join("db2");
    let want = make(&dir);
    let table = files(&dir, "sst")[0].clone();
    let (offset, lost) = block_keys(&table, 1);
    flip(&table, offset as usize + 10);
    let o = tmp.path().join("out2");
    let s = sdb(&["salvage", dir.to_str().unwrap(), o.to_str().unwrap()]);
    assert_eq!(code(&s), 1, "{}{}", out(&s), err(&s));
    let name = table.file_name().unwrap().to_str().unwrap();
    assert!(
        out(&s).contains(name) && out(&s).contains(&format!(" {offset}..")),
        "{}",
        out(&s)
    );
    let got = read_all(&o).unwrap();
    let mut expect = want.clone();
    for k in &lost {
        expect.remove(k);
    }
    assert!(!lost.is_empty());
    assert_eq!(got, expect);

    // 3. A damaged WAL record: the records before it come back, the report names the range,
    //    and everything salvaged was once written.
    let dir = tmp.path().join("db3");
    let want = make(&dir);
    let wal = files(&dir, "wal")[0].clone();
    flip(&wal, 60);
    let o = tmp.path().join("out3");
    let s = sdb(&[
        "salvage",
        "--json",
        dir.to_str().unwrap(),
        o.to_str().unwrap(),
    ]);
    assert_eq!(code(&s), 1, "{}{}", out(&s), err(&s));
    let rep: serde_json::Value = serde_json::from_str(out(&s).trim()).unwrap();
    let left = rep["left_behind"].as_array().unwrap();
    assert!(
        left.iter()
            .any(|l| l["file"].as_str().unwrap().ends_with(".wal")),
        "{rep}"
    );
    let got = read_all(&o).unwrap();
    for (k, v) in &got {
        assert_eq!(want.get(k), Some(v), "salvage invented {k:?}");
    }
    // The WAL held keys 2000..3000 in one record: all of the tables' keys come back.
    assert_eq!(got.len(), 2000);
}

#[test]
fn every_command_reports_damage_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    make(&dir);
    let table = files(&dir, "sst")[0].clone();
    let (offset, _) = block_keys(&table, 0);
    flip(&table, offset as usize + 5);
    let d = dir.to_str().unwrap();
    let t = table.to_str().unwrap();
    let name = table.file_name().unwrap().to_str().unwrap();
    for args in [
        vec!["dump", "table", t],
        vec!["scan", d],
        vec!["get", d, "key00000"],
    ] {
        let o = sdb(&args);
        assert_eq!(code(&o), 3, "{args:?}: {}{}", out(&o), err(&o));
        let e = err(&o);
        assert_eq!(e.lines().count(), 1, "{args:?}: {e}");
        assert!(e.contains(name) && e.contains("offset"), "{args:?}: {e}");
    }
    // A damaged synced WAL record: dump wal says where.
    let wal = files(&dir, "wal")[0].clone();
    flip(&wal, 60);
    let o = sdb(&["dump", "wal", wal.to_str().unwrap()]);
    assert_eq!(code(&o), 3, "{}", out(&o));
    let wname = wal.file_name().unwrap().to_str().unwrap();
    assert!(
        err(&o).contains(wname) && err(&o).contains("offset"),
        "{}",
        err(&o)
    );
    // A damaged manifest: info cannot read it, and says where.
    let m = manifest(&dir);
    flip(&m, 30);
    let o = sdb(&["info", d]);
    assert_eq!(code(&o), 3);
    assert!(
        err(&o).contains("MANIFEST-") && err(&o).contains("offset"),
        "{}",
        err(&o)
    );
    let o = sdb(&["dump", "manifest", d]);
    assert_eq!(code(&o), 3, "{}", out(&o));
}

/// Seeded random damage (`SDB_SALVAGE_SEEDS` seeds, default 12; a failure names its seed): a
/// few bytes of random files flipped. Everything salvaged was once written, and every key lies
/// in a part of a file the report lists as left behind, or is salvaged.
#[test]
fn salvage_after_random_damage() {
    let seeds: u64 = std::env::var("SDB_SALVAGE_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    let tmp = tempfile::tempdir().unwrap();
    let clean = tmp.path().join("clean");
    let want = make(&clean);
    for seed in 0..seeds {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        let dir = tmp.path().join(format!("db{seed}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut names: Vec<_> = std::fs::read_dir(&clean)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for n in &names {
            std::fs::copy(clean.join(n), dir.join(n)).unwrap();
        }
        let mut damaged = Vec::new();
        for _ in 0..1 + next(3) {
            let n = &names[next(names.len())];
            let p = dir.join(n);
            let len = std::fs::metadata(&p).unwrap().len() as usize;
            if len > 0 && n != "LOCK" {
                // WALs are pre-sized: aim inside their records.
                let at = next(len.min(if n.to_str().unwrap().ends_with(".wal") {
                    200_000
                } else {
                    len
                }));
                flip(&p, at);
                damaged.push(format!("{} @{at}", n.to_str().unwrap()));
            }
        }
        let o = tmp.path().join(format!("out{seed}"));
        let s = sdb(&[
            "salvage",
            "--json",
            dir.to_str().unwrap(),
            o.to_str().unwrap(),
        ]);
        assert!(
            code(&s) <= 1,
            "seed {seed} ({damaged:?}): {}{}",
            out(&s),
            err(&s)
        );
        let rep: serde_json::Value = serde_json::from_str(out(&s).trim())
            .unwrap_or_else(|e| panic!("seed {seed}: {e}: {}", out(&s)));
        let got = read_all(&o).unwrap();
        for (k, v) in &got {
            assert_eq!(
                want.get(k),
                Some(v),
                "seed {seed} ({damaged:?}): salvage invented {k:?}"
            );
        }
        let left = rep["left_behind"].as_array().unwrap();
        if got.len() < want.len() {
            assert!(
                !left.is_empty(),
                "seed {seed} ({damaged:?}): {} keys lost and nothing reported left behind",
                want.len() - got.len()
            );
        }
        if left.is_empty() {
            assert_eq!(got.len(), want.len(), "seed {seed} ({damaged:?})");
        }
    }
}
