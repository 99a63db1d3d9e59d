//! LZ4 blocks (`lz4_flex::block`: no frame, no size prefix) as the on-disk formats store them,
//! and the rule every codec is held to. Table blocks (`sstable::compress`) and WAL records
//! (`record`) both compress and decompress through here.

/// Compresses `raw` into `out` (replacing what it held) as one LZ4 block; false if the
/// encoder refuses.
pub(crate) fn compress_into(raw: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    out.resize(lz4_flex::block::get_maximum_output_size(raw.len()), 0);
    match lz4_flex::block::compress_into(raw, out) {
        Ok(n) => {
            out.truncate(n);
            true
        }
        Err(_) => false,
    }
}

/// Decompresses the LZ4 block `src` into `out` (replacing what it held), which must come to
/// exactly `raw_len` bytes; the caller has bounded `raw_len`. Says what is wrong otherwise.
pub(crate) fn decompress_exact(
    src: &[u8],
    raw_len: usize,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    // Every byte is overwritten by the decoder (and its count checked below), so what `out`
    // held before need not be cleared.
    out.resize(raw_len, 0);
    let n = lz4_flex::block::decompress_into(src, out)
        .map_err(|e| format!("LZ4 data does not decode: {e}"))?;
    if n != raw_len {
        return Err(format!(
            "LZ4 data decodes to {n} bytes, its header says {raw_len}"
        ));
    }
    Ok(())
}

/// Whether storing `stored` bytes (the compressed form and whatever records its raw length)
/// instead of `raw` bytes pays: it must save at least an eighth, or decompressing would cost
/// more than the bytes it saves.
pub(crate) fn pays(stored: usize, raw: usize) -> bool {
    stored < raw - raw / 8
}
