//! A client thread: puts, deletes and batches on its own keys, synced or not, now and then a
//! `sync`; it records what it was told, and stops at its first error.

use crate::SimFs;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sedimentdb::{Db, Error, WriteBatch, WriteOptions};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// One write of a client: its operations (`None` deletes) in order.
#[derive(Debug, Clone)]
pub(super) struct ClientWrite {
    pub ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// False if the call failed: the write may or may not have happened.
    pub acknowledged: bool,
    /// Its place in the order of acknowledgements across every thread (1 for the first).
    pub ack_no: u64,
    /// How many writes (of any thread) were acknowledged when this one began: each of them
    /// precedes it in the WAL.
    pub began: u64,
}

/// What a client thread did, in its own order.
#[derive(Debug, Clone, Default)]
pub(super) struct ClientLog {
    pub writes: Vec<ClientWrite>,
    /// Writes `..durable` had to survive any crash: the last synced write, or the last write
    /// before a `sync` that returned `Ok`, and everything before it.
    pub durable: usize,
    /// The latest point in the global order of acknowledgements that a synced write or `sync`
    /// of this thread made durable for every thread: a synced write's fsync covers every WAL
    /// record before its own, so every write acknowledged before the call began (`ack_no` at or
    /// below this) is durable too.
    pub durable_for_all: u64,
}

fn key(thread: usize, k: u64) -> Vec<u8> {
    format!("t{thread}-k{k:03}").into_bytes()
}

fn value(thread: usize, step: usize, len: usize) -> Vec<u8> {
    let mut v = format!("t{thread}-s{step}-").into_bytes();
    v.resize(len.max(v.len()), b'a' + (step % 26) as u8);
    v
}

/// Runs client `thread` of seed `seed` for `ops` operations.
pub(super) fn run_client(
    seed: u64,
    thread: usize,
    ops: usize,
    db: &Db,
    fs: &SimFs,
    acks: &AtomicU64,
) -> Result<ClientLog, String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (0x636c_6965_6e74 << 8) ^ thread as u64);
    let mut below = move |n: u64| rng.next_u64() % n;
    let mut log = ClientLog::default();
    // This thread's keys as it wrote them: no other thread writes them, so every read of them
    // must equal this, whatever the other threads, flushes and compactions do meanwhile.
    let mut mine: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for step in 0..ops {
        if below(8) == 0 {
            let (lo, hi) = (format!("t{thread}-"), format!("t{thread}."));
            let got: Result<BTreeMap<_, _>, _> = db.scan(lo.as_bytes()..hi.as_bytes()).collect();
            match got {
                Ok(got) if got == mine => {}
                Ok(got) => {
                    return Err(format!(
                        "client thread {thread}: a scan of its own keys found {} keys, it wrote \
                         {} (first difference: {:?})",
                        got.len(),
                        mine.len(),
                        mine.iter()
                            .find(|(k, v)| got.get(*k) != Some(*v))
                            .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
                    ))
                }
                Err(e) => return accept(e, fs, thread).map(|()| log),
            }
            continue;
        }
        if below(10) == 0 {
            let began = acks.load(Ordering::SeqCst);
            match db.sync() {
                Ok(()) => {
                    log.durable = log.writes.len();
                    log.durable_for_all = log.durable_for_all.max(began);
                }
                Err(e) => return accept(e, fs, thread).map(|()| log),
            }
            continue;
        }
        let mut b = WriteBatch::new();
        let mut wops = Vec::new();
        for _ in 0..1 + below(3) {
            let k = key(thread, below(24));
            if below(4) == 0 {
                b.delete(&k);
                wops.push((k, None));
            } else {
                let v = value(thread, step, below(300) as usize);
                b.put(&k, &v);
                wops.push((k, Some(v)));
            }
        }
        let sync = below(3) != 0;
        let began = acks.load(Ordering::SeqCst);
        match db.write(b, &WriteOptions { sync }) {
            Ok(()) => {
                let ack_no = acks.fetch_add(1, Ordering::SeqCst) + 1;
                for (k, v) in &wops {
                    match v {
                        Some(v) => mine.insert(k.clone(), v.clone()),
                        None => mine.remove(k),
                    };
                }
                log.writes.push(ClientWrite {
                    ops: wops,
                    acknowledged: true,
                    ack_no,
                    began,
                });
                if sync {
                    log.durable = log.writes.len();
                    log.durable_for_all = log.durable_for_all.max(began);
                }
            }
            Err(e @ Error::ReadOnly { .. }) => return accept(e, fs, thread).map(|()| log),
            Err(e) => {
                log.writes.push(ClientWrite {
                    ops: wops,
                    acknowledged: false,
                    ack_no: u64::MAX,
                    began,
                });
                return accept(e, fs, thread).map(|()| log);
            }
        }
    }
    Ok(log)
}

/// An error a client may meet: a read-only refusal, an I/O error once a fault fired, or
/// corruption once a bit was flipped.
fn accept(e: Error, fs: &SimFs, thread: usize) -> Result<(), String> {
    let faulted = fs.is_dead() || fs.stats().injected.values().sum::<u64>() > 0;
    match e {
        Error::ReadOnly { .. } => Ok(()),
        Error::Io { .. } if faulted => Ok(()),
        Error::Corruption { .. } if super::flipped(fs) => Ok(()),
        e => Err(format!(
            "client thread {thread} got an error no injected fault explains: {e}"
        )),
    }
}
