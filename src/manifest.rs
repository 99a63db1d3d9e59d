//! The manifest: which tables are live, as a log of checksummed version edits, and the `CURRENT`
//! pointer file that names the live manifest (`docs/format/manifest.md`). It knows nothing of
//! how tables are encoded beyond their `TableMeta`.
//!
//! ```text
//! CURRENT (24 bytes): magic "SDBCURNT" | version u32 LE | manifest_number u64 LE | crc32 u32 LE
//! MANIFEST-NNNNNN: a record log (`crate::record`) with magic "SDBMANIF"; each record one edit:
//! edit := field*
//! field := tag u8 | body
//!   1 next_file_number varint      2 last_seq varint      3 log_number varint
//!   4 add table: level varint | number varint | size varint | entries varint
//!       | tombstones varint | smallest_seq varint | largest_seq varint
//!       | smallest_len varint | smallest | largest_len varint | largest
//!   5 delete table: level varint | number varint
//! ```

use crate::coding::varint;
use crate::env::{join, Fs};
use crate::error::{Error, Result};
use crate::filename::{manifest_name, CURRENT, CURRENT_TMP};
use crate::planted::{self, Bug};
use crate::record::{self as log, LogWriter};
use crate::sstable::TableMeta;
use crate::version::NUM_LEVELS;
use std::collections::BTreeMap;
use std::path::Path;

/// Version of the `CURRENT` file. DO NOT CHANGE the meaning of a published version.
pub const CURRENT_FORMAT_VERSION: u32 = 1;
/// Magic of the `CURRENT` file. DO NOT CHANGE.
pub const CURRENT_MAGIC: [u8; 8] = *b"SDBCURNT";
/// Magic of manifest files. DO NOT CHANGE.
pub const MANIFEST_MAGIC: [u8; 8] = *b"SDBMANIF";

// Edit tags. DO NOT CHANGE.
const TAG_NEXT_FILE: u8 = 1;
const TAG_LAST_SEQ: u8 = 2;
const TAG_LOG_NUMBER: u8 = 3;
const TAG_ADD_TABLE: u8 = 4;
const TAG_DELETE_TABLE: u8 = 5;

/// A change to the set of live tables and counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionEdit {
    pub next_file: Option<u64>,
    pub last_seq: Option<u64>,
    /// WALs numbered below this are no longer needed.
    pub log_number: Option<u64>,
    pub added: Vec<(u32, TableMeta)>,
    pub deleted: Vec<(u32, u64)>,
}

impl VersionEdit {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (tag, v) in [
            (TAG_NEXT_FILE, self.next_file),
            (TAG_LAST_SEQ, self.last_seq),
            (TAG_LOG_NUMBER, self.log_number),
        ] {
            if let Some(v) = v {
                out.push(tag);
                varint::put(&mut out, v);
            }
        }
        for (level, m) in &self.added {
            out.push(TAG_ADD_TABLE);
            for v in [
                u64::from(*level),
                m.number,
                m.size_bytes,
                m.entries,
                m.tombstones,
                m.smallest_seq,
                m.largest_seq,
            ] {
                varint::put(&mut out, v);
            }
            for k in [&m.smallest, &m.largest] {
                varint::put(&mut out, k.len() as u64);
                out.extend_from_slice(k);
            }
        }
        for (level, n) in &self.deleted {
            out.push(TAG_DELETE_TABLE);
            varint::put(&mut out, u64::from(*level));
            varint::put(&mut out, *n);
        }
        out
    }

    pub fn decode(buf: &[u8]) -> Result<VersionEdit, String> {
        let mut e = VersionEdit::default();
        let mut p = 0;
        let num = |p: &mut usize, what: &str| {
            varint::get(buf, p).ok_or_else(|| format!("truncated {what} at edit byte {p}"))
        };
        let level = |p: &mut usize| -> Result<u32, String> {
            let l = num(p, "level")?;
            if l as usize >= NUM_LEVELS {
                return Err(format!("level {l} is not below {NUM_LEVELS}"));
            }
            Ok(l as u32)
        };
        while p < buf.len() {
            let tag = buf[p];
            p += 1;
            match tag {
                TAG_NEXT_FILE => e.next_file = Some(num(&mut p, "next file number")?),
                TAG_LAST_SEQ => e.last_seq = Some(num(&mut p, "last sequence")?),
                TAG_LOG_NUMBER => e.log_number = Some(num(&mut p, "log number")?),
                TAG_ADD_TABLE => {
                    let l = level(&mut p)?;
                    let mut m = TableMeta {
                        number: num(&mut p, "table number")?,
                        size_bytes: num(&mut p, "table size")?,
                        entries: num(&mut p, "entries")?,
                        tombstones: num(&mut p, "tombstones")?,
                        smallest_seq: num(&mut p, "smallest seq")?,
                        largest_seq: num(&mut p, "largest seq")?,
                        ..TableMeta::default()
                    };
                    for k in [&mut m.smallest, &mut m.largest] {
                        let n = num(&mut p, "key length")? as usize;
                        let end = p.checked_add(n).filter(|e| *e <= buf.len());
                        let end =
                            end.ok_or_else(|| format!("key of {n} bytes runs past the edit"))?;
                        *k = buf[p..end].to_vec();
                        p = end;
                    }
                    e.added.push((l, m));
                }
                TAG_DELETE_TABLE => {
                    let l = level(&mut p)?;
                    e.deleted.push((l, num(&mut p, "table number")?));
                }
                t => return Err(format!("unknown edit tag {t} at edit byte {}", p - 1)),
            }
        }
        Ok(e)
    }
}

/// The state a manifest describes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestState {
    pub next_file: u64,
    pub last_seq: u64,
    pub log_number: u64,
    /// Live tables by number, with their level.
    pub tables: BTreeMap<u64, (u32, TableMeta)>,
}

impl ManifestState {
    /// Applies an edit; `Err` names an inconsistency (a table added twice or deleted unseen),
    /// and then the state is unchanged: an edit applies whole or not at all.
    pub fn apply(&mut self, e: &VersionEdit) -> Result<(), String> {
        for (level, n) in &e.deleted {
            if self.tables.get(n).map(|(l, _)| l) != Some(level) {
                return Err(format!(
                    "edit deletes table {n} at level {level}, not live there"
                ));
            }
        }
        for (i, (_, m)) in e.added.iter().enumerate() {
            let deleted_here = e.deleted.iter().any(|(_, n)| *n == m.number);
            let added_before = e.added[..i].iter().any(|(_, o)| o.number == m.number);
            if (self.tables.contains_key(&m.number) && !deleted_here) || added_before {
                return Err(format!("edit adds table {} twice", m.number));
            }
        }
        if let Some(v) = e.next_file {
            self.next_file = self.next_file.max(v);
        }
        if let Some(v) = e.last_seq {
            self.last_seq = self.last_seq.max(v);
        }
        if let Some(v) = e.log_number {
            self.log_number = self.log_number.max(v);
        }
        for (_, n) in &e.deleted {
            self.tables.remove(n);
        }
        for (level, m) in &e.added {
            self.tables.insert(m.number, (*level, m.clone()));
            if m.number >= self.next_file {
                self.next_file = m.number + 1;
            }
        }
        Ok(())
    }

    /// One edit that recreates this state from nothing.
    pub fn snapshot(&self) -> VersionEdit {
        VersionEdit {
            next_file: Some(self.next_file),
            last_seq: Some(self.last_seq),
            log_number: Some(self.log_number),
            added: self.tables.values().map(|(l, m)| (*l, m.clone())).collect(),
            deleted: Vec::new(),
        }
    }
}

/// Encodes the `CURRENT` file.
fn encode_current(manifest_number: u64) -> [u8; 24] {
    let mut b = [0u8; 24];
    b[0..8].copy_from_slice(&CURRENT_MAGIC);
    b[8..12].copy_from_slice(&CURRENT_FORMAT_VERSION.to_le_bytes());
    b[12..20].copy_from_slice(&manifest_number.to_le_bytes());
    let crc = crc32fast::hash(&b[0..20]);
    b[20..24].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Reads `CURRENT`: the number of the live manifest. Distinguishes a foreign file
/// ([`Error::NotADatabase`]), a newer format ([`Error::UnsupportedVersion`]) and damage.
pub fn read_current(fs: &dyn Fs, dir: &Path) -> Result<u64> {
    let path = join(dir, CURRENT);
    let file = fs.open(&path).map_err(|e| Error::io("open", &path, e))?;
    let data = log::read_all(file.as_ref(), &path)?;
    let magic_bits_off = data
        .iter()
        .chain(std::iter::repeat(&0u8))
        .zip(CURRENT_MAGIC.iter())
        .map(|(a, b)| (a ^ b).count_ones())
        .sum::<u32>();
    if magic_bits_off > 4 {
        // Not a damaged sedimentdb magic: someone else's file.
        return Err(Error::NotADatabase {
            path: dir.to_path_buf(),
            reason: "its CURRENT file does not start with the sedimentdb magic".into(),
        });
    }
    // The layout (magic, version, manifest number, checksum) is the same in every format
    // version, so length and checksum come first: a damaged version field is corruption, an
    // intact newer one is unsupported.
    if data.len() != 24 {
        return Err(Error::corruption(
            &path,
            0,
            format!("CURRENT is {} bytes, expected 24", data.len()),
        ));
    }
    let crc = u32::from_le_bytes(data[20..24].try_into().expect("4 bytes"));
    if crc32fast::hash(&data[0..20]) != crc || data[0..8] != CURRENT_MAGIC {
        return Err(Error::corruption(&path, 0, "CURRENT checksum mismatch"));
    }
    let version = u32::from_le_bytes(data[8..12].try_into().expect("4 bytes"));
    if version != CURRENT_FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            file: path,
            found: version,
            supported: CURRENT_FORMAT_VERSION,
        });
    }
    Ok(u64::from_le_bytes(
        data[12..20].try_into().expect("8 bytes"),
    ))
}

/// Atomically points `CURRENT` at manifest `n`.
pub fn write_current(fs: &dyn Fs, dir: &Path, n: u64) -> Result<()> {
    let tmp = join(dir, CURRENT_TMP);
    let cur = join(dir, CURRENT);
    match fs.remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("remove", &tmp, e)),
    }
    let f = fs.create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    f.append(&encode_current(n))
        .map_err(|e| Error::io("append", &tmp, e))?;
    // Durability point: without this fsync, the rename could survive a power loss while the
    // pointer's bytes do not, leaving an empty CURRENT.
    if !planted::active(Bug::SkipCurrentSync) {
        f.sync().map_err(|e| Error::io("sync", &tmp, e))?;
    }
    fs.rename(&tmp, &cur)
        .map_err(|e| Error::io("rename", &tmp, e))?;
    // Durability point: without this directory fsync, the database could reopen on the old
    // manifest, whose WALs may already be gone, on a filesystem that reorders directory
    // changes. (Under the fault model the removals that depend on it come later in the same
    // directory, and the new WAL's directory fsync follows before any write is acknowledged:
    // no planted bug can show it, see `docs/design.md`.)
    fs.sync_dir(dir).map_err(|e| Error::io("sync_dir", dir, e))
}

/// Reads manifest `n` into a state.
pub fn load(fs: &dyn Fs, dir: &Path, n: u64) -> Result<ManifestState> {
    let path = join(dir, &manifest_name(n));
    let file = fs.open(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::corruption(
            &path,
            0,
            "CURRENT names this manifest but it does not exist",
        ),
        _ => Error::io("open", &path, e),
    })?;
    let data = log::read_all(file.as_ref(), &path)?;
    let mut state = ManifestState::default();
    let mut records = 0usize;
    // A manifest is synced after every edit, but the last edit may have been torn by a power
    // loss before its sync returned: that edit was never acted upon, so cutting it is safe.
    log::replay(&data, &path, MANIFEST_MAGIC, n, true, |off, payload| {
        let edit = VersionEdit::decode(payload).map_err(|r| Error::corruption(&path, off, r))?;
        state
            .apply(&edit)
            .map_err(|r| Error::corruption(&path, off, r))?;
        records += 1;
        Ok(())
    })?;
    if records == 0 {
        return Err(Error::corruption(
            &path,
            log::FILE_HEADER_LEN as u64,
            "manifest holds no complete edit",
        ));
    }
    Ok(state)
}

/// The open manifest, appended to by flushes and compactions.
pub struct ManifestWriter {
    log: LogWriter,
    number: u64,
}

impl ManifestWriter {
    /// Writes a new manifest `n` holding a snapshot of `state`, syncs it and its directory, and
    /// points `CURRENT` at it.
    pub fn create(
        fs: &dyn Fs,
        dir: &Path,
        n: u64,
        state: &ManifestState,
    ) -> Result<ManifestWriter> {
        let path = join(dir, &manifest_name(n));
        let file = fs
            .create(&path)
            .map_err(|e| Error::io("create", &path, e))?;
        let mut w = ManifestWriter {
            log: LogWriter::new(file, path, MANIFEST_MAGIC, n)?,
            number: n,
        };
        w.append(&state.snapshot())?;
        // Durability point: without this directory fsync, CURRENT could name a manifest whose
        // directory entry was lost, on a filesystem that reorders directory changes. (Under
        // the fault model, which keeps a prefix of them in order, the rename of CURRENT that
        // follows can only survive with this entry: no planted bug can show it, see
        // `docs/design.md`.)
        fs.sync_dir(dir)
            .map_err(|e| Error::io("sync_dir", dir, e))?;
        write_current(fs, dir, n)?;
        Ok(w)
    }

    /// Appends an edit and syncs it. After any failure the writer refuses every later call
    /// (see `LogWriter`), so no edit lands after a damaged one.
    pub fn append(&mut self, edit: &VersionEdit) -> Result<()> {
        self.log.add_record(&[&edit.encode()])?;
        // Durability point: without this fsync, a power loss could forget a flushed table after
        // its WAL was deleted.
        if !planted::active(Bug::SkipManifestSync) {
            self.log.sync()?;
        }
        // An empty edit after it vouches (by its synced offset) that the edit above was synced,
        // so damage to that edit is reported as corruption instead of being cut as a torn tail:
        // the callers delete WALs and tables on the strength of this edit.
        self.log.add_record(&[])?;
        // Durability point: without this fsync, damage to the edit above could be cut at the
        // next open as if it were a torn tail, silently forgetting a table or a deletion.
        if planted::active(Bug::SkipManifestVouchSync) {
            return Ok(());
        }
        self.log.sync()
    }

    pub fn number(&self) -> u64 {
        self.number
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn edit_round_trips(
            nf in proptest::option::of(any::<u64>()), ls in proptest::option::of(any::<u64>()),
            ln in proptest::option::of(any::<u64>()),
            added in proptest::collection::vec((0u32..7, any::<u64>(), any::<u64>(), proptest::collection::vec(any::<u8>(), 0..20)), 0..5),
            deleted in proptest::collection::vec((0u32..7, any::<u64>()), 0..5),
        ) {
            let e = VersionEdit {
                next_file: nf, last_seq: ls, log_number: ln,
                added: added.into_iter().map(|(l, n, s, k)| (l, TableMeta { number: n, size_bytes: s, entries: 3, tombstones: 1, smallest_seq: 2, largest_seq: 9, smallest: k.clone(), largest: k })).collect(),
                deleted,
            };
            let enc = e.encode();
            prop_assert_eq!(VersionEdit::decode(&enc).unwrap(), e);
            for cut in 0..enc.len() {
                // A cut edit never decodes into something longer than the prefix held.
                if let Ok(d) = VersionEdit::decode(&enc[..cut]) {
                    prop_assert!(d.encode().len() <= cut);
                }
            }
        }
    }
}
