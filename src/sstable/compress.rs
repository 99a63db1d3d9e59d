//! Data-block codecs (table format 3). A data block is stored as
//!
//! ```text
//! codec 0 (none):  block bytes                                    ++ codec u8
//! codec 1 (LZ4):   raw_len varint ++ LZ4 block (lz4_flex)         ++ codec u8
//! codec 2 (zstd):  raw_len varint ++ one zstd frame               ++ codec u8
//! ```
//!
//! The block trailer's checksum covers these stored bytes, codec byte included, so a damaged
//! block is refused before it is decompressed. Decompression is bounded all the same: `raw_len`
//! may not exceed the table's largest data block (recorded in its checksummed meta block), and
//! the codec must produce exactly `raw_len` bytes.

use crate::options::Compression;
use crate::planted::{self, Bug};

/// Codec byte of a block stored as it is.
pub const CODEC_NONE: u8 = 0;
/// Codec byte of an LZ4 block.
pub const CODEC_LZ4: u8 = 1;
/// Codec byte of a zstd block.
pub const CODEC_ZSTD: u8 = 2;

/// How a block was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Compressed with the level's codec.
    Compressed,
    /// As it is: no codec asked for, or compression would not have saved an eighth.
    Raw,
}

/// Appends the stored form of `raw` under `codec` to `out`; `scratch` is reused between calls.
/// A compressed block that does not save at least an eighth of the raw bytes is stored raw
/// (decompressing it would cost more than the bytes it saves).
pub fn encode_into(
    codec: Compression,
    raw: &[u8],
    scratch: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Stored {
    let (byte, ok) = match codec {
        Compression::None => (CODEC_NONE, false),
        Compression::Lz4 => (CODEC_LZ4, crate::lz4::compress_into(raw, scratch)),
        Compression::Zstd(level) => (CODEC_ZSTD, zstd_compress(raw, level, scratch)),
    };
    let start = out.len();
    crate::coding::varint::put(out, raw.len() as u64);
    let head_len = out.len() - start;
    // Stored size (length, compressed bytes; the codec byte is there either way).
    let pays = ok && crate::lz4::pays(head_len + scratch.len(), raw.len());
    if pays {
        out.extend_from_slice(scratch);
        out.push(byte);
        Stored::Compressed
    } else {
        out.truncate(start);
        out.extend_from_slice(raw);
        // Planted: the level's codec byte on a block left raw, as if the decision to store raw
        // were taken after the codec byte was chosen.
        let wrong = ok && planted::active(Bug::RawBlockMarkedCompressed);
        out.push(if wrong { byte } else { CODEC_NONE });
        Stored::Raw
    }
}

#[cfg(feature = "zstd")]
thread_local! {
    /// zstd's contexts, one of each per thread and reused from block to block: making one
    /// allocates and sets up about 100 KiB, which cost more than decoding a 4 KiB block (reads
    /// of zstd tables ran at a seventh of LZ4's with a context per block).
    static ZSTD_COMPRESSOR: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
    static ZSTD_DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

#[cfg(feature = "zstd")]
fn zstd_compress(raw: &[u8], level: i32, scratch: &mut Vec<u8>) -> bool {
    ZSTD_COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.as_ref().is_none_or(|(l, _)| *l != level) {
            match zstd::bulk::Compressor::new(level) {
                Ok(z) => *c = Some((level, z)),
                Err(_) => return false,
            }
        }
        let Some((_, z)) = c.as_mut() else {
            return false;
        };
        scratch.clear();
        scratch.reserve(zstd::zstd_safe::compress_bound(raw.len()));
        z.compress_to_buffer(raw, scratch).is_ok()
    })
}

#[cfg(not(feature = "zstd"))]
fn zstd_compress(_raw: &[u8], _level: i32, _scratch: &mut Vec<u8>) -> bool {
    // `Options::validate` refuses zstd in a build without it.
    false
}

/// Why a stored block could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes are not a valid block of their codec (or claim an impossible size).
    Corrupt(String),
    /// A codec this build does not have (zstd without the feature, or an unknown codec byte).
    Unsupported(String),
}

/// Decodes a stored data block in place: `buf` holds the stored bytes (codec byte last) and
/// is left holding the block. `max_raw_len` bounds what a compressed block may expand to.
/// Returns the codec byte.
pub fn decode_in_place(buf: &mut Vec<u8>, max_raw_len: u64) -> Result<u8, DecodeError> {
    decode_with_spare(buf, &mut Vec::new(), max_raw_len)
}

/// [`decode_in_place`], decompressing into `spare` and swapping it with `buf` (so a caller
/// that keeps both buffers decodes block after block without allocating).
pub fn decode_with_spare(
    buf: &mut Vec<u8>,
    spare: &mut Vec<u8>,
    max_raw_len: u64,
) -> Result<u8, DecodeError> {
    let Some(&codec) = buf.last() else {
        return Err(DecodeError::Corrupt(
            "empty data block (no codec byte)".into(),
        ));
    };
    let stored = buf.len() - 1;
    if codec == CODEC_NONE {
        buf.truncate(stored);
        return Ok(codec);
    }
    if codec != CODEC_LZ4 && codec != CODEC_ZSTD {
        return Err(DecodeError::Unsupported(format!(
            "data block with unknown codec {codec}"
        )));
    }
    let mut p = 0;
    let raw_len = crate::coding::varint::get(&buf[..stored], &mut p)
        .ok_or_else(|| DecodeError::Corrupt("compressed block with a malformed length".into()))?;
    if raw_len > max_raw_len {
        return Err(DecodeError::Corrupt(format!(
            "compressed block claims {raw_len} bytes, more than the table's largest block \
             ({max_raw_len} bytes)"
        )));
    }
    if codec == CODEC_LZ4 {
        crate::lz4::decompress_exact(&buf[p..stored], raw_len as usize, spare)
            .map_err(|e| DecodeError::Corrupt(format!("compressed block: {e}")))?;
    } else {
        // Every byte is overwritten by the codec (and its count checked below), so what
        // `spare` held before need not be cleared.
        spare.resize(raw_len as usize, 0);
        let n = zstd_decompress(&buf[p..stored], &mut spare[..])?;
        if n as u64 != raw_len {
            return Err(DecodeError::Corrupt(format!(
                "compressed block decodes to {n} bytes, its header says {raw_len}"
            )));
        }
    }
    std::mem::swap(buf, spare);
    Ok(codec)
}

#[cfg(feature = "zstd")]
fn zstd_decompress(src: &[u8], out: &mut [u8]) -> Result<usize, DecodeError> {
    let bad = |e: std::io::Error| DecodeError::Corrupt(format!("zstd block does not decode: {e}"));
    ZSTD_DECOMPRESSOR.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = Some(zstd::bulk::Decompressor::new().map_err(bad)?);
        }
        match d.as_mut() {
            Some(z) => z.decompress_to_buffer(src, out).map_err(bad),
            None => Err(DecodeError::Corrupt("no zstd context".into())),
        }
    })
}

#[cfg(not(feature = "zstd"))]
fn zstd_decompress(_src: &[u8], _out: &mut [u8]) -> Result<usize, DecodeError> {
    Err(DecodeError::Unsupported(
        "zstd-compressed data block, and this build has no zstd (cargo feature `zstd`)".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(c: Compression, raw: &[u8]) -> (Stored, Vec<u8>) {
        let (mut scratch, mut out) = (Vec::new(), Vec::new());
        let s = encode_into(c, raw, &mut scratch, &mut out);
        let stored = out.clone();
        decode_in_place(&mut out, raw.len() as u64).unwrap();
        assert_eq!(out, raw);
        (s, stored)
    }

    #[test]
    fn compressible_blocks_shrink_and_random_ones_stay_raw() {
        let text: Vec<u8> = b"value 17 value 17 value 17 ".repeat(100);
        let (s, stored) = roundtrip(Compression::Lz4, &text);
        assert_eq!(s, Stored::Compressed);
        assert!(stored.len() < text.len() / 4, "{} bytes", stored.len());
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let (s, stored) = roundtrip(Compression::Lz4, &noise);
        assert_eq!(s, Stored::Raw);
        assert_eq!(stored.len(), noise.len() + 1);
        assert_eq!(roundtrip(Compression::None, &text).0, Stored::Raw);
        assert_eq!(roundtrip(Compression::Lz4, b"").0, Stored::Raw);
    }

    #[test]
    fn a_length_past_the_bound_is_refused_before_allocating() {
        let text: Vec<u8> = b"abcd".repeat(1000);
        let (mut scratch, mut out) = (Vec::new(), Vec::new());
        encode_into(Compression::Lz4, &text, &mut scratch, &mut out);
        let e = decode_in_place(&mut out.clone(), 3999).unwrap_err();
        assert!(
            matches!(e, DecodeError::Corrupt(ref m) if m.contains("largest block")),
            "{e:?}"
        );
        // A damaged length inside the bound: the codec output must match it exactly.
        out[0] ^= 1;
        assert!(matches!(
            decode_in_place(&mut out, 1 << 20),
            Err(DecodeError::Corrupt(_))
        ));
        let mut unknown = vec![1, 2, 3, 9];
        assert!(matches!(
            decode_in_place(&mut unknown, 100),
            Err(DecodeError::Unsupported(_))
        ));
    }

    #[cfg(feature = "zstd")]
    #[test]
    fn zstd_roundtrips() {
        let text: Vec<u8> = b"value 17 value 17 value 17 ".repeat(100);
        assert_eq!(roundtrip(Compression::Zstd(3), &text).0, Stored::Compressed);
    }
}
