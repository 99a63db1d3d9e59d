//! Fuzz harnesses, written once and run two ways: by `cargo test` through `bolero::check!`
//! (random inputs, `tests/fuzz_harnesses.rs`) and by the coverage-guided fuzzers in `fuzz/`
//! (one cargo-fuzz target per harness). Each takes arbitrary bytes and panics only when the
//! engine breaks its contract: a panic inside the engine, wrong data, or a corrupt input that is
//! accepted as something it is not.

use crate::runner::run_steps;
use crate::workload::{Knobs, Step};
use crate::SimFs;
use sedimentdb::internals::key::Found;
use sedimentdb::internals::key::{self, Kind};
use sedimentdb::internals::manifest::{self, ManifestState, ManifestWriter, VersionEdit};
use sedimentdb::internals::record::{self as log, LogEnd, LogWriter};
use sedimentdb::internals::sstable::block::{BlockBuilder, BlockCursor};
use sedimentdb::internals::sstable::{bloom, Table, TableBuilder, TableIter, TableMeta};
use sedimentdb::internals::wal::batch::{decode_payload, payload_header, WriteBatch};
use sedimentdb::internals::wal::WAL_MAGIC;
pub use sedimentdb::internals::MemFile;
use sedimentdb::{Error, Fs};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Reads structured choices from fuzzer bytes; past the end every read is zero.
pub struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data, pos: 0 }
    }

    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    pub fn u16(&mut self) -> u16 {
        u16::from(self.u8()) | (u16::from(self.u8()) << 8)
    }

    pub fn u32(&mut self) -> u32 {
        u32::from(self.u16()) | (u32::from(self.u16()) << 16)
    }

    pub fn bytes(&mut self, max: usize) -> &'a [u8] {
        let n = (self.u8() as usize).min(max);
        let start = self.pos.min(self.data.len());
        let end = (start + n).min(self.data.len());
        self.pos += n;
        &self.data[start..end]
    }

    pub fn exhausted(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        &self.data[self.pos.min(self.data.len())..]
    }
}

fn le_u64(data: &[u8], at: usize) -> Option<u64> {
    data.get(at..at + 8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
}

/// The choices of a mutation come from the input's last bytes, so they stay varied when the
/// front of the input is used up building the file.
fn mutation_choices(data: &[u8]) -> Input<'_> {
    Input::new(&data[data.len().saturating_sub(24)..])
}

/// A change to a valid file: what storage damage does.
fn mutate(bytes: &mut Vec<u8>, inp: &mut Input) {
    if bytes.is_empty() {
        return;
    }
    for _ in 0..1 + inp.u8() % 3 {
        let at = inp.u32() as usize % bytes.len();
        match inp.u8() % 4 {
            0 => bytes[at] ^= 1 << (inp.u8() % 8),
            1 => bytes.truncate(at),
            2 => {
                // Splice: copy a run of the file over another place (a misdirected write).
                let from = inp.u32() as usize % bytes.len();
                let n = (inp.u16() as usize % 512)
                    .min(bytes.len() - from)
                    .min(bytes.len() - at);
                let run = bytes[from..from + n].to_vec();
                bytes[at..at + n].copy_from_slice(&run);
            }
            _ => bytes[at..]
                .iter_mut()
                .take(1 + inp.u8() as usize)
                .for_each(|b| *b = 0),
        }
        if bytes.is_empty() {
            return;
        }
    }
}

fn is_clear_error(e: &Error) -> bool {
    matches!(
        e,
        Error::Corruption { .. } | Error::UnsupportedVersion { .. }
    )
}

/// `wal_replay`: arbitrary bytes as a WAL, and mutations of a valid WAL. Replay returns the
/// records intact up to the first damage (a prefix of what was written, never a record that
/// was not), or a clear error; never a panic or an endless loop.
pub fn wal_replay(data: &[u8]) {
    let path = Path::new("/db/000007.wal");
    // 1. The bytes as they are, under the file number their header names (so that a real WAL
    //    from the corpus replays), and under another.
    let named = le_u64(data, 12).unwrap_or(7);
    for (tail_allowed, number) in [(true, named), (false, named), (true, named ^ 1)] {
        let mut n = 0usize;
        let r = log::replay(
            data,
            path,
            WAL_MAGIC,
            number,
            tail_allowed,
            |off, payload| {
                assert!((off as usize) < data.len(), "record offset past the end");
                n += 1;
                let _ = decode_payload(payload, |_, _| ());
                Ok(())
            },
        );
        if let Err(e) = r {
            assert!(is_clear_error(&e), "unclear error: {e}");
        }
        assert!(n <= data.len() / log::RECORD_HEADER_LEN + 1);
    }
    // 2. A valid WAL made from the input, then damaged.
    let mut inp = Input::new(data);
    let file = MemFile::default();
    let f: Arc<dyn sedimentdb::File> = Arc::new(file.clone());
    let mut w = LogWriter::new(f, path.to_path_buf(), WAL_MAGIC, 7).expect("in memory");
    let mut written: Vec<Vec<u8>> = Vec::new();
    for i in 0..(inp.u8() % 12) as u64 {
        let mut b = WriteBatch::new();
        b.put(inp.bytes(20), inp.bytes(60));
        if inp.u8().is_multiple_of(3) {
            b.delete(inp.bytes(10));
        }
        let mut payload = payload_header(i * 10 + 1, 1_000, b.len() as u32).to_vec();
        payload.extend_from_slice(b.encoded_entries());
        w.add_record(&[&payload]).expect("in memory");
        if inp.u8().is_multiple_of(2) {
            w.sync().expect("in memory");
        }
        written.push(payload);
    }
    let mut bytes = file.bytes();
    let clean = bytes.clone();
    mutate(&mut bytes, &mut mutation_choices(data));
    let mut got: Vec<Vec<u8>> = Vec::new();
    match log::replay(&bytes, path, WAL_MAGIC, 7, true, |_, p| {
        got.push(p.to_vec());
        Ok(())
    }) {
        Ok(end) => {
            assert!(got.len() <= written.len(), "replay invented records");
            assert_eq!(
                &written[..got.len()],
                &got[..],
                "replay returned a record that was not written"
            );
            if bytes == clean {
                assert_eq!(end, LogEnd::Clean);
                assert_eq!(got.len(), written.len());
            }
        }
        Err(e) => assert!(is_clear_error(&e), "unclear error: {e}"),
    }
}

/// Reads every key of `want` and a full scan from the table at `path`: each answer is the right
/// data or a clear error, never wrong data.
fn read_table_checked(fs: &SimFs, path: &Path, want: &BTreeMap<Vec<u8>, (u64, bool, Vec<u8>)>) {
    let t = match Table::open(fs, path, 9) {
        Ok(t) => Arc::new(t),
        Err(e) => {
            assert!(is_clear_error(&e), "unclear error at open: {e}");
            return;
        }
    };
    for (k, (_, del, v)) in want {
        match t.get(k, key::SEQ_MAX) {
            Ok((found, _)) => {
                let expect = if *del {
                    Found::Deleted
                } else {
                    Found::Value(v.clone())
                };
                assert_eq!(found, Some(expect), "wrong data for key {k:?}");
            }
            Err(e) => assert!(is_clear_error(&e), "unclear error: {e}"),
        }
    }
    let mut it = TableIter::new(t);
    let mut expect = want.iter();
    let mut r = it.seek_to_first();
    while r.is_ok() && it.valid() {
        let (k, (seq, del, v)) = expect
            .next()
            .expect("the scan returned more entries than written");
        let p = key::parse(it.key()).expect("a scan returned a malformed key");
        assert_eq!(
            (p.user_key, p.seq, p.kind == Kind::Delete, it.value()),
            (&k[..], *seq, *del, &v[..])
        );
        r = it.advance();
    }
    match r {
        Ok(()) => assert!(
            expect.next().is_none(),
            "a scan ended early without an error"
        ),
        Err(e) => assert!(is_clear_error(&e), "unclear error: {e}"),
    }
}

/// `sstable_open_and_read`: arbitrary bytes as a table, and mutations (bit flips, truncation,
/// spliced blocks) of a valid one. Opening, reading every key and a full scan return the right
/// data or `Error::Corruption`; never a panic or wrong data.
pub fn sstable_open_and_read(data: &[u8]) {
    let fs = SimFs::new();
    let raw = Path::new("/raw.sst");
    fs.write_file(raw, data).expect("in memory");
    // The number the footer names, so that a real table from the corpus opens.
    let named = data
        .len()
        .checked_sub(72)
        .and_then(|f| le_u64(data, f + 12))
        .unwrap_or(9);
    if let Ok(t) = Table::open(&fs, raw, named) {
        let t = Arc::new(t);
        let _ = t.get(b"k", key::SEQ_MAX);
        let mut it = TableIter::new(t);
        let mut r = it.seek_to_first();
        let mut steps = 0;
        while r.is_ok() && it.valid() && steps < 100_000 {
            r = it.advance();
            steps += 1;
        }
    }
    let mut inp = Input::new(data);
    let mut want: BTreeMap<Vec<u8>, (u64, bool, Vec<u8>)> = BTreeMap::new();
    for i in 0..inp.u8() as u64 {
        let k = inp.bytes(16).to_vec();
        if k.is_empty() {
            continue;
        }
        let del = inp.u8().is_multiple_of(4);
        let v = if del {
            5u64.to_le_bytes().to_vec()
        } else {
            inp.bytes(200).to_vec()
        };
        want.insert(k, (i + 1, del, v));
    }
    let path = Path::new("/t.sst");
    let f = fs.create(path).expect("in memory");
    let block = 64 + (inp.u16() as usize % 2048);
    let mut b = TableBuilder::new(
        f,
        path.to_path_buf(),
        9,
        block,
        1 + inp.u8() as usize % 16,
        10,
    );
    for (k, (seq, del, v)) in &want {
        let kind = if *del { Kind::Delete } else { Kind::Put };
        b.add(&key::encode(k, *seq, kind), v).expect("in memory");
    }
    let meta: TableMeta = b.finish().expect("in memory");
    assert_eq!(meta.entries, want.len() as u64);
    read_table_checked(&fs, path, &want);
    let mut bytes = fs.read_file(path).expect("written");
    mutate(&mut bytes, &mut mutation_choices(data));
    let damaged = Path::new("/damaged.sst");
    fs.write_file(damaged, &bytes).expect("in memory");
    read_table_checked(&fs, damaged, &want);
}

/// `manifest_replay`: arbitrary bytes as a manifest and as `CURRENT`, and mutations of valid
/// ones. Loading returns the state that was written, a prefix of its edits, or a clear error.
pub fn manifest_replay(data: &[u8]) {
    let dir = Path::new("/db");
    let fs = SimFs::new();
    fs.create_dir_all(dir).expect("in memory");
    let named = le_u64(data, 12).unwrap_or(3);
    fs.write_file(
        &dir.join(sedimentdb::internals::filename::manifest_name(named)),
        data,
    )
    .expect("in memory");
    if let Err(e) = manifest::load(&fs, dir, named) {
        assert!(is_clear_error(&e), "unclear error: {e}");
    }
    fs.write_file(&dir.join("CURRENT"), data)
        .expect("in memory");
    match manifest::read_current(&fs, dir) {
        Ok(_) | Err(Error::NotADatabase { .. }) => {}
        Err(e) => assert!(is_clear_error(&e), "unclear error: {e}"),
    }
    // A valid manifest with a few edits, then damaged.
    let mut inp = Input::new(data);
    let fs = SimFs::new();
    fs.create_dir_all(dir).expect("in memory");
    let mut state = ManifestState {
        next_file: 10,
        ..ManifestState::default()
    };
    let mut w = ManifestWriter::create(&fs, dir, 5, &state).expect("in memory");
    let mut states = vec![state.clone()];
    for i in 0..inp.u8() % 8 {
        let meta = TableMeta {
            number: 100 + u64::from(i),
            size_bytes: u64::from(inp.u16()),
            entries: 1,
            smallest: key::encode(inp.bytes(8), 1, Kind::Put),
            largest: key::encode(inp.bytes(8), 1, Kind::Put),
            ..TableMeta::default()
        };
        let mut edit = VersionEdit {
            last_seq: Some(u64::from(inp.u32())),
            added: vec![(u32::from(inp.u8() % 7), meta)],
            ..VersionEdit::default()
        };
        if i > 0 && inp.u8().is_multiple_of(2) {
            let victim = 100 + u64::from(i - 1);
            if let Some((l, _)) = state.tables.get(&victim) {
                edit.deleted.push((*l, victim));
            }
        }
        state.apply(&edit).expect("a consistent edit");
        w.append(&edit).expect("in memory");
        states.push(state.clone());
    }
    let loaded = manifest::load(&fs, dir, 5).expect("an intact manifest loads");
    assert_eq!(&loaded, states.last().expect("one at least"));
    let name = dir.join("MANIFEST-000005");
    let mut bytes = fs.read_file(&name).expect("written");
    mutate(&mut bytes, &mut mutation_choices(data));
    fs.remove_file(&name).expect("exists");
    fs.write_file(&name, &bytes).expect("in memory");
    match manifest::load(&fs, dir, 5) {
        Ok(s) => assert!(
            states.contains(&s),
            "a damaged manifest loaded as a state never written"
        ),
        Err(e) => assert!(is_clear_error(&e), "unclear error: {e}"),
    }
}

/// `block_and_filter`: blocks and Bloom filters built from arbitrary sorted key sets round-trip,
/// seek correctly, and the filter has no false negatives, ever.
pub fn block_and_filter(data: &[u8]) {
    let mut inp = Input::new(data);
    let mut keys: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let interval = 1 + inp.u8() as usize % 20;
    let bits = 1 + inp.u8() as usize % 20;
    while !inp.exhausted() && keys.len() < 500 {
        let k = inp.bytes(24).to_vec();
        let v = inp.bytes(40).to_vec();
        keys.insert(k, v);
    }
    let mut b = BlockBuilder::new(interval);
    for (k, v) in &keys {
        b.add(k, v);
    }
    let mut block = Vec::new();
    b.finish_into(&mut block);
    let mut c = BlockCursor::default();
    c.reset(&block).expect("a built block is valid");
    c.seek_to_first(&block).expect("valid");
    let mut got = Vec::new();
    while c.valid() {
        got.push((c.key().to_vec(), c.value(&block).to_vec()));
        c.advance(&block).expect("valid");
    }
    let want: Vec<_> = keys.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(got, want);
    for probe in keys.keys().take(50) {
        c.seek(&block, probe, |a, b| a.cmp(b)).expect("valid");
        assert!(c.valid() && c.key() == &probe[..]);
    }
    let hashes: Vec<u64> = keys.keys().map(|k| bloom::key_hash(k)).collect();
    let f = bloom::build(&hashes, bits);
    for h in hashes {
        assert!(bloom::may_contain(&f, h), "Bloom filter false negative");
    }
    // The raw bytes as a block never panic.
    let raw = inp.rest();
    let mut c = BlockCursor::default();
    if c.reset(raw).is_ok() && c.seek_to_first(raw).is_ok() {
        for _ in 0..1000 {
            if !c.valid() || c.advance(raw).is_err() {
                break;
            }
        }
    }
    let _ = bloom::may_contain(raw, 42);
}

/// Decodes fuzzer bytes into simulator steps (two to four bytes a step).
pub fn steps_from_bytes(data: &[u8]) -> (Knobs, Vec<Step>) {
    let mut inp = Input::new(data);
    let knobs = Knobs {
        memtable_size_bytes: [2048, 8192, 65536][inp.u8() as usize % 3],
        block_size_bytes: [64, 512, 4096][inp.u8() as usize % 3],
        l0_compaction_trigger: [1, 2, 4, 1000][inp.u8() as usize % 4],
        level1_size_bytes: [4096, 65536][inp.u8() as usize % 2],
        table_size_bytes: [1024, 16384][inp.u8() as usize % 2],
        tombstone_grace_ms: [0, 1000, 3_600_000][inp.u8() as usize % 3],
        ..Knobs::default()
    };
    let mut steps = Vec::new();
    while !inp.exhausted() && steps.len() < 400 {
        let op = inp.u8();
        let key = u32::from(inp.u8() % 32);
        let s = match op % 26 {
            0..=5 => Step::Put {
                key,
                len: u32::from(inp.u8()) * 4,
                tag: steps.len() as u32,
                sync: op & 0x80 != 0,
            },
            6..=7 => Step::Delete {
                key,
                sync: op & 0x80 != 0,
            },
            8 => Step::Batch {
                ops: (0..1 + inp.u8() % 5)
                    .map(|i| (u32::from(inp.u8() % 32), (i % 2 == 0).then_some(16)))
                    .collect(),
                tag: steps.len() as u32,
                sync: op & 0x80 != 0,
            },
            9..=10 => Step::Get { key },
            11 => Step::Scan {
                from: (op & 0x40 != 0).then_some(key),
                to: (op & 0x80 != 0).then_some(key + 8),
            },
            12 => Step::Sync,
            13 => Step::Flush,
            14 => Step::Reopen,
            15 => Step::PowerLoss,
            16 => Step::ProcessCrash,
            17 => Step::CrashAfterCalls {
                calls: 1 + u32::from(inp.u8()),
                power: op & 0x80 != 0,
            },
            18 => Step::FailSync {
                drop_pages: op & 0x80 != 0,
            },
            19 => Step::FailAppend {
                prefix: u32::from(inp.u8()),
            },
            20 => Step::ClockForward {
                ms: u64::from(inp.u32()),
            },
            21 => Step::CompactStep,
            22 => Step::CompactRange {
                from: None,
                to: None,
            },
            23 => {
                if op & 0x80 != 0 {
                    Step::ScanHold
                } else {
                    Step::ScanFinish
                }
            }
            24 => Step::RawScan,
            _ => {
                if op & 0x80 != 0 {
                    Step::DiskFull {
                        free_bytes: u32::from(inp.u16()),
                    }
                } else {
                    Step::SpaceReturns
                }
            }
        };
        steps.push(s);
    }
    (knobs, steps)
}

/// `ops_vs_model`: an arbitrary sequence of operations and faults on `SimFs`, checked against
/// the model by the simulator's oracle: the fuzzer-driven twin of the seeded simulator.
pub fn ops_vs_model(data: &[u8]) {
    let (knobs, steps) = steps_from_bytes(data);
    if let Err(f) = run_steps(0, &knobs, &steps) {
        panic!(
            "{f}\nsteps: {}",
            steps
                .iter()
                .map(|s| s.to_rust())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

/// A harness: arbitrary bytes in, a panic on a broken contract.
pub type Harness = fn(&[u8]);

/// Every harness by name, for the regression replayer and the fuzz targets.
pub const HARNESSES: [(&str, Harness); 5] = [
    ("wal_replay", wal_replay),
    ("sstable_open_and_read", sstable_open_and_read),
    ("manifest_replay", manifest_replay),
    ("block_and_filter", block_and_filter),
    ("ops_vs_model", ops_vs_model),
];
