//! Writes the small seed corpora under `fuzz/corpus/<target>/`: real WALs, tables, manifests
//! and CURRENT files made by the engine on `SimFs`, and seeded byte strings for the structured
//! harnesses. `cargo run -p sedimentdb-sim --example make_fuzz_corpus`.
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sedimentdb::{Background, Db, Options, WriteBatch, WriteOptions};
use sedimentdb_sim::World;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let w = World::new();
    let opts = Options {
        memtable_size_bytes: 4096,
        block_size_bytes: 256,
        background: Background::Inline,
        ..Options::default()
    };
    let db = Db::open_with(w.env(), "/db", opts).unwrap();
    for i in 0..40u32 {
        let mut b = WriteBatch::new();
        b.put(format!("key{i:03}"), vec![i as u8; (i * 7 % 90) as usize]);
        if i % 5 == 0 {
            b.delete(format!("key{:03}", i / 2));
        }
        db.write(b, &WriteOptions { sync: i % 3 != 0 }).unwrap();
    }
    db.flush().unwrap();
    for i in 0..6u32 {
        db.put(format!("late{i}"), b"v").unwrap();
    }
    w.fs.process_crash();
    drop(db);
    let dir = Path::new("/db");
    let mut wrote = 0;
    for name in w.fs.names(dir) {
        let bytes = w.fs.read_file(&dir.join(&name)).unwrap();
        let target = if name.ends_with(".wal") {
            "wal_replay"
        } else if name.ends_with(".sst") {
            "sstable_open_and_read"
        } else if name.starts_with("MANIFEST-") || name == "CURRENT" {
            "manifest_replay"
        } else {
            continue;
        };
        let d = root.join(target);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("engine-{name}")), &bytes).unwrap();
        wrote += 1;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(20261124);
    for target in [
        "wal_replay",
        "sstable_open_and_read",
        "manifest_replay",
        "block_and_filter",
        "ops_vs_model",
    ] {
        let d = root.join(target);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..4 {
            let len = 32 + (rng.next_u64() % 480) as usize;
            let mut v = vec![0u8; len];
            rng.fill_bytes(&mut v);
            std::fs::write(d.join(format!("seeded-{i}")), &v).unwrap();
            wrote += 1;
        }
    }
    println!("wrote {wrote} corpus files under {}", root.display());
}
