//! Integer encodings shared by the on-disk formats: LEB128 varints and little-endian fixed-width
//! integers read from untrusted bytes (a short buffer is `None`, never a panic).

/// LEB128 varints.
pub mod varint {
    /// Appends `v` as a varint.
    pub fn put(out: &mut Vec<u8>, v: u64) {
        let mut b = [0u8; 10];
        let n = encode(v, &mut b);
        out.extend_from_slice(&b[..n]);
    }

    /// Writes `v` as a varint at the start of `out` (at least [`len`]`(v)` bytes); returns
    /// how many bytes it took.
    pub fn encode(mut v: u64, out: &mut [u8]) -> usize {
        let mut n = 0;
        while v >= 0x80 {
            out[n] = (v as u8) | 0x80;
            n += 1;
            v >>= 7;
        }
        out[n] = v as u8;
        n + 1
    }

    /// Bytes `v` takes as a varint.
    pub fn len(v: u64) -> usize {
        (64 - v.leading_zeros()).div_ceil(7).max(1) as usize
    }

    /// Decodes a varint at `*pos`, advancing it; `None` if truncated or longer than 10 bytes.
    pub fn get(buf: &[u8], pos: &mut usize) -> Option<u64> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = *buf.get(*pos)?;
            *pos += 1;
            v |= u64::from(b & 0x7f).checked_shl(7 * i)?;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
}

/// The little-endian `u32` at `buf[at..at + 4]`, if the buffer holds it.
pub fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

/// The little-endian `u64` at `buf[at..at + 8]`, if the buffer holds it.
pub fn u64_at(buf: &[u8], at: usize) -> Option<u64> {
    let b = buf.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varint_round_trips(v: u64) {
            let mut out = Vec::new();
            varint::put(&mut out, v);
            let mut pos = 0;
            prop_assert_eq!(varint::get(&out, &mut pos), Some(v));
            prop_assert_eq!(pos, out.len());
            prop_assert_eq!(varint::get(&out[..out.len() - 1], &mut 0), None);
        }

        #[test]
        fn fixed_ints_read_back_and_refuse_short_buffers(v: u64, at in 0usize..4) {
            let mut buf = vec![0xAA; at];
            buf.extend_from_slice(&v.to_le_bytes());
            prop_assert_eq!(u64_at(&buf, at), Some(v));
            prop_assert_eq!(u32_at(&buf, at), Some(v as u32));
            prop_assert_eq!(u64_at(&buf, at + 1), None);
            prop_assert_eq!(u64_at(&buf, usize::MAX), None);
        }
    }
}
