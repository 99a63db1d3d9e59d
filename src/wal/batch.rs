//! Write batches and their encoding as a WAL record payload.
//!
//! ```text
//! payload := header | entry*count
//! header  := seq varint | time_ms varint | count varint         -- log format version 4
//!          | seq u64 LE | time_ms u64 LE | count u32 LE          -- log format versions 1 to 3
//! entry   := kind u8 | key_len varint | key | (value_len varint | value)   -- Put, RangeDelete
//! ```
//! Entry `i` gets sequence number `seq + i`. A tombstone's deletion time is the payload's
//! `time_ms`. A range delete (kind 2, log format version 2) stores its start as the key and its
//! end as the value.

use crate::coding::{u32_at, u64_at, varint};
use crate::key::{self, Kind};
use crate::memtable::Memtable;

/// Bytes of the payload header in log format versions 1 to 3.
pub const PAYLOAD_HEADER_LEN: usize = 20;
/// Most bytes of the payload header in log format version 4 (three varints).
pub const PAYLOAD_HEADER_LEN_MAX: usize = 10 + 10 + 5;

/// An encoded payload header (log format version 4), used as a byte slice.
#[derive(Debug, Clone, Copy)]
pub struct EncodedHeader {
    bytes: [u8; PAYLOAD_HEADER_LEN_MAX],
    len: usize,
}

impl std::ops::Deref for EncodedHeader {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// An atomic group of puts and deletes, applied with [`crate::Db::write`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    pub(crate) rep: Vec<u8>,
    pub(crate) count: u32,
    /// Largest key and value in the batch, checked against the limits at write time.
    pub(crate) max_key_len: usize,
    pub(crate) max_value_len: usize,
    pub(crate) has_empty_key: bool,
    /// A range delete whose start sorts after its end (refused at write time).
    pub(crate) inverted_range: Option<(usize, usize)>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }

    /// Adds a put of `key` to `value`.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        let (key, value) = (key.as_ref(), value.as_ref());
        self.note_key(key);
        self.max_value_len = self.max_value_len.max(value.len());
        // One growth for the whole entry (kind, two varints, key, value), not one per part.
        self.rep.reserve(1 + 10 + key.len() + 10 + value.len());
        self.rep.push(Kind::Put as u8);
        varint::put(&mut self.rep, key.len() as u64);
        self.rep.extend_from_slice(key);
        varint::put(&mut self.rep, value.len() as u64);
        self.rep.extend_from_slice(value);
        self.count += 1;
        self
    }

    /// Adds a delete of `key`.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        let key = key.as_ref();
        self.note_key(key);
        self.rep.reserve(1 + 10 + key.len());
        self.rep.push(Kind::Delete as u8);
        varint::put(&mut self.rep, key.len() as u64);
        self.rep.extend_from_slice(key);
        self.count += 1;
        self
    }

    /// Adds a delete of every key in `range` (`start..end`, end excluded): one entry, atomic
    /// with the rest of the batch, whose deletion time is the write's, as for a point delete.
    /// An empty range (`start == end`) deletes nothing; one whose start sorts after its end is
    /// refused by the write with [`crate::Error::InvalidArgument`].
    pub fn delete_range<K: AsRef<[u8]>>(&mut self, range: std::ops::Range<K>) -> &mut Self {
        let (start, end) = (range.start.as_ref(), range.end.as_ref());
        self.max_key_len = self.max_key_len.max(start.len()).max(end.len());
        if start > end && self.inverted_range.is_none() {
            self.inverted_range = Some((start.len(), end.len()));
        }
        self.rep.push(Kind::RangeDelete as u8);
        varint::put(&mut self.rep, start.len() as u64);
        self.rep.extend_from_slice(start);
        varint::put(&mut self.rep, end.len() as u64);
        self.rep.extend_from_slice(end);
        self.count += 1;
        self
    }

    fn note_key(&mut self, key: &[u8]) {
        self.max_key_len = self.max_key_len.max(key.len());
        self.has_empty_key |= key.is_empty();
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True if the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Removes every operation.
    pub fn clear(&mut self) {
        *self = WriteBatch::default();
    }

    /// The operations as the WAL stores them after the payload header (`docs/format/wal.md`).
    pub fn encoded_entries(&self) -> &[u8] {
        &self.rep
    }

    /// Bytes of the encoded operations.
    pub fn size_bytes(&self) -> usize {
        self.rep.len()
    }
}

/// Encodes the payload header (log format version 4).
pub fn payload_header(seq: u64, time_ms: u64, count: u32) -> EncodedHeader {
    let mut h = EncodedHeader {
        bytes: [0u8; PAYLOAD_HEADER_LEN_MAX],
        len: 0,
    };
    // Into the fixed buffer: a write allocates nothing here.
    for v in [seq, time_ms, u64::from(count)] {
        h.len += varint::encode(v, &mut h.bytes[h.len..]);
    }
    h
}

/// Encodes the payload header of log format versions 1 to 3 (what older WALs hold).
pub fn payload_header_v1(seq: u64, time_ms: u64, count: u32) -> [u8; PAYLOAD_HEADER_LEN] {
    let mut h = [0u8; PAYLOAD_HEADER_LEN];
    h[0..8].copy_from_slice(&seq.to_le_bytes());
    h[8..16].copy_from_slice(&time_ms.to_le_bytes());
    h[16..20].copy_from_slice(&count.to_le_bytes());
    h
}

/// One decoded entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    pub kind: Kind,
    pub key: &'a [u8],
    /// The value of a put, the end of a range delete; empty for a delete.
    pub value: &'a [u8],
}

/// A decoded payload header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadHeader {
    pub seq: u64,
    pub time_ms: u64,
    pub count: u32,
}

/// Decodes a payload of a log of format `version`, calling `f` for each entry with its
/// sequence number. Returns the header, or a description of what is malformed.
pub fn decode_payload<'a>(
    payload: &'a [u8],
    version: u32,
    f: impl FnMut(u64, Entry<'a>),
) -> Result<PayloadHeader, String> {
    let (h, at) = decode_header(payload, version)?;
    decode_entries(&payload[at..], h.count, h.seq, f)?;
    Ok(h)
}

/// Decodes and checks a payload's header; returns it and the offset of the entries.
pub fn decode_header(payload: &[u8], version: u32) -> Result<(PayloadHeader, usize), String> {
    let (seq, time_ms, count, at) = if version >= 4 {
        let mut p = 0;
        let mut field = |what: &str| {
            varint::get(payload, &mut p)
                .ok_or_else(|| format!("batch payload with a malformed {what} in its header"))
        };
        let seq = field("sequence number")?;
        let time_ms = field("time")?;
        let count = field("count")?;
        let count = u32::try_from(count)
            .map_err(|_| format!("batch payload claims {count} entries, more than 2^32 - 1"))?;
        (seq, time_ms, count, p)
    } else {
        let short = || {
            format!(
                "batch payload of {} bytes is shorter than its {PAYLOAD_HEADER_LEN}-byte header",
                payload.len()
            )
        };
        let seq = u64_at(payload, 0).ok_or_else(short)?;
        let time_ms = u64_at(payload, 8).ok_or_else(short)?;
        let count = u32_at(payload, 16).ok_or_else(short)?;
        (seq, time_ms, count, PAYLOAD_HEADER_LEN)
    };
    if seq
        .checked_add(u64::from(count))
        .is_none_or(|end| end > crate::key::SEQ_MAX)
    {
        return Err(format!("sequence numbers {seq}+{count} exceed the maximum"));
    }
    Ok((
        PayloadHeader {
            seq,
            time_ms,
            count,
        },
        at,
    ))
}

/// Applies `count` encoded entries (a batch's `rep`) to `mem`, numbered from `seq`: a put with
/// its value, a delete as a tombstone carrying `time_ms`. The one apply path, used by the write
/// path and by recovery.
pub fn apply_entries(
    rep: &[u8],
    count: u32,
    seq: u64,
    time_ms: u64,
    mem: &Memtable,
) -> Result<(), String> {
    let tombstone = key::tombstone_value(time_ms);
    decode_entries(rep, count, seq, |seq, e| match e.kind {
        Kind::Put => mem.insert(e.key, seq, e.kind, e.value),
        Kind::Delete => mem.insert(e.key, seq, e.kind, &tombstone[..]),
        Kind::RangeDelete => mem.insert_range(e.key, e.value, seq, time_ms),
    })
}

/// Applies a whole WAL payload (header and entries) of a log of format `version` to `mem`;
/// returns its header.
pub fn apply_payload(
    payload: &[u8],
    version: u32,
    mem: &Memtable,
) -> Result<PayloadHeader, String> {
    let (h, at) = decode_header(payload, version)?;
    apply_entries(&payload[at..], h.count, h.seq, h.time_ms, mem)?;
    Ok(h)
}

/// Decodes `count` entries (a batch's `rep`), numbering them from `seq`.
pub fn decode_entries<'a>(
    rep: &'a [u8],
    count: u32,
    seq: u64,
    mut f: impl FnMut(u64, Entry<'a>),
) -> Result<(), String> {
    let mut pos = 0;
    for i in 0..count {
        let kind = rep
            .get(pos)
            .and_then(|b| Kind::from_u8(*b))
            .ok_or_else(|| format!("entry {i}: missing or unknown kind byte"))?;
        pos += 1;
        let key = take(rep, &mut pos).ok_or_else(|| format!("entry {i}: bad key length"))?;
        let value = match kind {
            Kind::Put | Kind::RangeDelete => {
                take(rep, &mut pos).ok_or_else(|| format!("entry {i}: bad value length"))?
            }
            Kind::Delete => &[][..],
        };
        f(seq + u64::from(i), Entry { kind, key, value });
    }
    if pos != rep.len() {
        return Err(format!(
            "{} trailing bytes after {count} entries",
            rep.len() - pos
        ));
    }
    Ok(())
}

fn take<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let len = usize::try_from(varint::get(buf, pos)?).ok()?;
    let end = pos.checked_add(len)?;
    let s = buf.get(*pos..end)?;
    *pos = end;
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn batch_round_trips(
            ops in proptest::collection::vec((0u8..3, proptest::collection::vec(any::<u8>(), 0..20), proptest::collection::vec(any::<u8>(), 0..40)), 0..30),
            seq in 0u64..1 << 50, time in any::<u64>(),
        ) {
            let mut b = WriteBatch::new();
            for (kind, k, v) in &ops {
                match kind {
                    0 => { b.put(k, v); }
                    1 => { b.delete(k); }
                    _ => { b.delete_range(k.clone()..v.clone()); }
                }
            }
            // The header of every log format version: varints (4), fixed width (1 to 3).
            for version in [4, 3] {
                let mut payload = if version == 4 {
                    payload_header(seq, time, b.count).to_vec()
                } else {
                    payload_header_v1(seq, time, b.count).to_vec()
                };
                payload.extend_from_slice(&b.rep);
                let mut got = Vec::new();
                let h = decode_payload(&payload, version, |s, e| got.push((s, e.kind, e.key.to_vec(), e.value.to_vec()))).unwrap();
                prop_assert_eq!(h, PayloadHeader { seq, time_ms: time, count: ops.len() as u32 });
                for (i, (kind, k, v)) in ops.iter().enumerate() {
                    let want_kind = [Kind::Put, Kind::Delete, Kind::RangeDelete][*kind as usize];
                    let want_v = if want_kind == Kind::Delete { Vec::new() } else { v.clone() };
                    prop_assert_eq!(&got[i], &(seq + i as u64, want_kind, k.clone(), want_v));
                }
                // Any truncation is detected, never misread.
                let truncated = decode_payload(&payload[..payload.len() - 1], version, |_, _| ());
                prop_assert!(truncated.is_err());
            }
        }
    }
}
