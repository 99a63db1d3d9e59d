//! Internal keys: a user key, a sequence number and a kind, and their ordering.
//!
//! Encoded as `user_key ++ trailer`, where `trailer = (seq << 8) | kind` as 8 bytes little-endian.
//! Ordering: user key ascending (bytewise), then trailer descending, so the newest version of a
//! key comes first and a lookup for `(key, seq)` lands on the newest version at or below `seq`.

use std::cmp::Ordering;

/// The kind of an entry. On-disk values: DO NOT CHANGE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// A tombstone; its value is the deletion time (8 bytes, little-endian milliseconds).
    Delete = 0,
    /// A value.
    Put = 1,
    /// A range tombstone: in a write batch, deletes `[key, value)`. Never stored in a data
    /// block; in a table's bounds it marks a range sentinel (see [`range_sentinel`]).
    RangeDelete = 2,
}

impl Kind {
    /// Decodes a stored kind byte.
    pub fn from_u8(b: u8) -> Option<Kind> {
        match b {
            0 => Some(Kind::Delete),
            1 => Some(Kind::Put),
            2 => Some(Kind::RangeDelete),
            _ => None,
        }
    }
}

/// Largest sequence number: 56 bits.
pub const SEQ_MAX: u64 = (1 << 56) - 1;
/// Bytes of the trailer.
pub const TRAILER_LEN: usize = 8;

/// Packs a sequence number and kind into a trailer.
pub fn trailer(seq: u64, kind: Kind) -> u64 {
    debug_assert!(seq <= SEQ_MAX);
    (seq << 8) | kind as u64
}

/// Appends the encoded internal key to `out`.
pub fn encode_into(out: &mut Vec<u8>, user_key: &[u8], seq: u64, kind: Kind) {
    out.extend_from_slice(user_key);
    out.extend_from_slice(&trailer(seq, kind).to_le_bytes());
}

/// Encodes an internal key.
pub fn encode(user_key: &[u8], seq: u64, kind: Kind) -> Vec<u8> {
    let mut v = Vec::with_capacity(user_key.len() + TRAILER_LEN);
    encode_into(&mut v, user_key, seq, kind);
    v
}

/// A decoded view of an encoded internal key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed<'a> {
    pub user_key: &'a [u8],
    pub seq: u64,
    pub kind: Kind,
}

/// Splits an encoded internal key; `None` if it is too short or its kind is unknown.
pub fn parse(ikey: &[u8]) -> Option<Parsed<'_>> {
    if ikey.len() < TRAILER_LEN {
        return None;
    }
    let (user_key, t) = ikey.split_at(ikey.len() - TRAILER_LEN);
    let t = u64::from_le_bytes(t.try_into().ok()?);
    Some(Parsed {
        user_key,
        seq: t >> 8,
        kind: Kind::from_u8((t & 0xff) as u8)?,
    })
}

/// The user key of an encoded internal key (all of it if too short to carry a trailer).
pub fn user_key(ikey: &[u8]) -> &[u8] {
    &ikey[..ikey.len().saturating_sub(TRAILER_LEN)]
}

fn trailer_of(ikey: &[u8]) -> u64 {
    let n = ikey.len();
    if n < TRAILER_LEN {
        return 0;
    }
    let mut t = [0u8; 8];
    t.copy_from_slice(&ikey[n - TRAILER_LEN..]);
    u64::from_le_bytes(t)
}

/// The first 8 bytes of `user_key` as a big-endian integer, zero-padded if shorter. Where two
/// keys' prefixes differ they order as the keys do (a shorter key's zeros sort at or below any
/// byte where the other goes on); where they are equal, only the keys themselves can tell.
pub fn user_key_prefix(user_key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = user_key.len().min(8);
    b[..n].copy_from_slice(&user_key[..n]);
    u64::from_be_bytes(b)
}

/// Orders encoded internal keys: user key ascending, then trailer descending.
pub fn compare(a: &[u8], b: &[u8]) -> Ordering {
    let (ua, ub) = (user_key(a), user_key(b));
    // The first 8 bytes as big-endian integers order as the bytes do; keys that differ there
    // (most, in a memtable's search) are told apart without a call to memcmp.
    if let (Some(x), Some(y)) = (ua.first_chunk::<8>(), ub.first_chunk::<8>()) {
        let (x, y) = (u64::from_be_bytes(*x), u64::from_be_bytes(*y));
        if x != y {
            return x.cmp(&y);
        }
    }
    match ua.cmp(ub) {
        Ordering::Equal => trailer_of(b).cmp(&trailer_of(a)),
        o => o,
    }
}

/// A borrowed encoded internal key with the internal ordering.
#[derive(PartialEq, Eq)]
#[repr(transparent)]
pub struct InternalKeyRef(pub [u8]);

impl InternalKeyRef {
    /// Views bytes as an internal key.
    pub fn new(bytes: &[u8]) -> &InternalKeyRef {
        // SAFETY: InternalKeyRef is repr(transparent) over [u8], so the layouts are identical.
        unsafe { &*(bytes as *const [u8] as *const InternalKeyRef) }
    }
}

impl Ord for InternalKeyRef {
    fn cmp(&self, other: &Self) -> Ordering {
        compare(&self.0, &other.0)
    }
}

impl PartialOrd for InternalKeyRef {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Bytes of a tombstone's value: its deletion time.
pub const TOMBSTONE_VALUE_LEN: usize = 8;

/// The value stored with a tombstone: its deletion time, milliseconds since the Unix epoch,
/// 8 bytes little-endian. DO NOT CHANGE.
pub fn tombstone_value(deleted_at_ms: u64) -> [u8; TOMBSTONE_VALUE_LEN] {
    deleted_at_ms.to_le_bytes()
}

/// The deletion time a tombstone's value holds; `None` if the value is not 8 bytes.
pub fn deletion_time(value: &[u8]) -> Option<u64> {
    value.try_into().ok().map(u64::from_le_bytes)
}

/// True if the internal key `ikey` and its value are well formed: a trailer with a point kind,
/// and for a tombstone an 8-byte deletion time. Checked on everything read from disk.
pub fn entry_is_well_formed(ikey: &[u8], value: &[u8]) -> bool {
    match parse(ikey).map(|p| p.kind) {
        Some(Kind::Put) => true,
        Some(Kind::Delete) => value.len() == TOMBSTONE_VALUE_LEN,
        Some(Kind::RangeDelete) | None => false,
    }
}

/// The internal key `(user_key, SEQ_MAX, RangeDelete)`: it sorts before every real version of
/// `user_key`. As a table's smallest key it says the table's range tombstones start at
/// `user_key`; as its largest, that they end just before it (the range is exclusive there).
pub fn range_sentinel(user_key: &[u8]) -> Vec<u8> {
    encode(user_key, SEQ_MAX, Kind::RangeDelete)
}

/// True if `ikey` is a range sentinel: as a table's largest key, its user key is excluded.
pub fn is_range_sentinel(ikey: &[u8]) -> bool {
    parse(ikey).is_some_and(|p| p.kind == Kind::RangeDelete && p.seq == SEQ_MAX)
}

/// What a point lookup found for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found<V> {
    /// The newest visible version is a value.
    Value(V),
    /// The newest visible version is a tombstone.
    Deleted,
}

thread_local! {
    /// Reused buffer for lookup keys, so a `get` allocates only what it returns.
    static LOOKUP: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` on the lookup key of `(user_key, seq)`: the encoded internal key `(user_key, seq,
/// Put)`, the first key at or after which the newest version of `user_key` visible at `seq`
/// sorts.
pub fn with_lookup_key<R>(user_key: &[u8], seq: u64, f: impl FnOnce(&[u8]) -> R) -> R {
    LOOKUP.with(|b| match b.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            encode_into(&mut buf, user_key, seq, Kind::Put);
            let r = f(&buf);
            if buf.capacity() > 4096 {
                *buf = Vec::new();
            }
            r
        }
        // Re-entered (cannot happen today): fall back to a fresh buffer.
        Err(_) => f(&encode(user_key, seq, Kind::Put)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn compare_orders_as_user_key_then_trailer_descending(
            ka in proptest::collection::vec(any::<u8>(), 0..20),
            kb in proptest::collection::vec(any::<u8>(), 0..20),
            sa in 0u64..1000,
            sb in 0u64..1000,
        ) {
            // Short keys and shared 8-byte prefixes too: the fast path and the slow one.
            let kb = match sb % 3 {
                0 => ka.clone(),
                // The same first 8 bytes (or all of a short key), then something else.
                1 => ka.iter().take(8).chain(&kb).copied().collect(),
                _ => kb,
            };
            let (a, b) = (encode(&ka, sa, Kind::Put), encode(&kb, sb, Kind::Put));
            let want = ka.cmp(&kb).then(sb.cmp(&sa));
            prop_assert_eq!(compare(&a, &b), want);
        }
    }

    #[test]
    fn newest_version_sorts_first() {
        let a = encode(b"k", 5, Kind::Put);
        let b = encode(b"k", 9, Kind::Delete);
        assert_eq!(compare(&b, &a), Ordering::Less);
        // A key that is a prefix of another sorts first whatever the trailers are.
        let c = encode(b"k\x00", 1, Kind::Put);
        assert_eq!(compare(&a, &c), Ordering::Less);
    }

    proptest! {
        #[test]
        fn ordering_matches_tuple_ordering(
            ka in proptest::collection::vec(any::<u8>(), 0..6),
            kb in proptest::collection::vec(any::<u8>(), 0..6),
            sa in 0..SEQ_MAX, sb in 0..SEQ_MAX, da: bool, db: bool,
        ) {
            let kind = |d: bool| if d { Kind::Delete } else { Kind::Put };
            let a = encode(&ka, sa, kind(da));
            let b = encode(&kb, sb, kind(db));
            let want = ka.cmp(&kb).then((sb, kind(db) as u8).cmp(&(sa, kind(da) as u8)));
            prop_assert_eq!(compare(&a, &b), want);
            let p = parse(&a).unwrap();
            prop_assert_eq!((p.user_key, p.seq, p.kind), (&ka[..], sa, kind(da)));
        }
    }
}
