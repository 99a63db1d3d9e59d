//! Thousands of seeded random operations on SimFs (puts, deletes, batches, flushes, clean
//! reopens, and power losses with reopen) checked against a BTreeMap model after every step.
//!
//! The seed is printed on failure; rerun one with `SEDIMENTDB_SEED=<seed> cargo test --test
//! random_ops`. `SEDIMENTDB_SEEDS=<n>` runs more seeds.
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sedimentdb::{Background, Db, Options, WriteBatch, WriteOptions};
use sedimentdb_sim::model::{snapshot, Model, Op};
use sedimentdb_sim::World;

fn pick(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    rng.next_u64() % n
}

fn run(seed: u64, steps: usize) -> Result<(), String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let world = World::new();
    let opts = Options {
        memtable_size_bytes: 2048 + pick(&mut rng, 16 << 10) as usize,
        block_size_bytes: 64 + pick(&mut rng, 1024) as usize,
        background: Background::Inline,
        ..Options::default()
    };
    let open = |w: &World| Db::open_with(w.env(), "/db", opts.clone()).map_err(|e| e.to_string());
    let mut db = open(&world)?;
    let mut model = Model::new();
    let keyspace = 1 + pick(&mut rng, 300);
    let key = |rng: &mut ChaCha8Rng| format!("k{:05}", pick(rng, keyspace)).into_bytes();
    for step in 0..steps {
        let ctx = |what: String| format!("step {step}: {what}");
        let dice = pick(&mut rng, 100);
        match dice {
            0..=39 => {
                let k = key(&mut rng);
                let len = if pick(&mut rng, 20) == 0 {
                    pick(&mut rng, 3000)
                } else {
                    pick(&mut rng, 40)
                };
                let v: Vec<u8> = (0..len).map(|i| (i as u8) ^ (step as u8)).collect();
                let sync = pick(&mut rng, 3) != 0;
                let mut b = WriteBatch::new();
                b.put(&k, &v);
                db.write(b, &WriteOptions { sync })
                    .map_err(|e| ctx(format!("put: {e}")))?;
                model.ack(vec![Op::Put(k, v)], sync, 0);
            }
            40..=54 => {
                let k = key(&mut rng);
                db.delete(&k).map_err(|e| ctx(format!("delete: {e}")))?;
                model.ack(vec![Op::Delete(k)], true, 0);
            }
            55..=62 => {
                let mut b = WriteBatch::new();
                let mut ops = Vec::new();
                for _ in 0..1 + pick(&mut rng, 8) {
                    let k = key(&mut rng);
                    if pick(&mut rng, 3) == 0 {
                        b.delete(&k);
                        ops.push(Op::Delete(k));
                    } else {
                        let v = format!("batch{step}").into_bytes();
                        b.put(&k, &v);
                        ops.push(Op::Put(k, v));
                    }
                }
                let sync = pick(&mut rng, 2) == 0;
                db.write(b, &WriteOptions { sync })
                    .map_err(|e| ctx(format!("batch: {e}")))?;
                model.ack(ops, sync, 0);
            }
            63..=79 => {
                let k = key(&mut rng);
                let got = db.get(&k).map_err(|e| ctx(format!("get: {e}")))?;
                if got.as_ref() != model.get(&k) {
                    return Err(ctx(format!(
                        "get {:?}: model {:?}, db {:?}",
                        k,
                        model.get(&k),
                        got
                    )));
                }
            }
            80..=84 => {
                let a = key(&mut rng);
                let b = key(&mut rng);
                let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                let got: Result<Vec<_>, _> = db.scan(&lo[..]..&hi[..]).collect();
                let got = got.map_err(|e| ctx(format!("scan: {e}")))?;
                let want: Vec<_> = model
                    .state()
                    .range(lo..hi)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if got != want {
                    return Err(ctx(format!(
                        "scan: {} entries, model {}",
                        got.len(),
                        want.len()
                    )));
                }
            }
            85..=88 => {
                db.flush().map_err(|e| ctx(format!("flush: {e}")))?;
                model.mark_durable();
            }
            89..=90 => {
                db.sync().map_err(|e| ctx(format!("sync: {e}")))?;
                model.mark_durable();
            }
            91..=94 => {
                db.close().map_err(|e| ctx(format!("close: {e}")))?;
                model.mark_durable();
                db = open(&world).map_err(|e| ctx(format!("reopen: {e}")))?;
            }
            _ => {
                world.fs.crash();
                drop(db);
                db = open(&world).map_err(|e| ctx(format!("reopen after crash: {e}")))?;
                let actual = snapshot(&db).map_err(|e| ctx(format!("scan after crash: {e}")))?;
                model
                    .recover(&actual, false)
                    .map_err(|e| ctx(format!("after crash: {e}")))?;
            }
        }
        if step % 50 == 0 {
            let actual = snapshot(&db).map_err(|e| ctx(format!("full scan: {e}")))?;
            if &actual != model.state() {
                return Err(ctx(format!(
                    "full scan differs: {}",
                    sedimentdb_sim::model::first_difference(model.state(), &actual)
                )));
            }
        }
    }
    Ok(())
}

#[test]
fn random_operations_match_the_model() {
    let seeds: Vec<u64> = match std::env::var("SEDIMENTDB_SEED") {
        Ok(s) => vec![s.parse().expect("SEDIMENTDB_SEED must be a u64")],
        Err(_) => {
            let n: u64 = std::env::var("SEDIMENTDB_SEEDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(24);
            (0..n).collect()
        }
    };
    for seed in seeds {
        if let Err(e) = run(seed, 2500) {
            panic!("seed {seed} failed: {e}\nrerun: SEDIMENTDB_SEED={seed} cargo test --test random_ops");
        }
    }
}
