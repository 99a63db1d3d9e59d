//! Appending records to a log file: framing, the synced offset, and refusal after a failure.

use super::{
    file_header, header_check, record_crc_v4, COMPRESS_MIN_BYTES, FILE_HEADER_LEN,
    RECORD_HEADER_FIXED_V4,
};
use crate::coding::varint;
use crate::env::File;
use crate::error::{Error, Result};
use crate::options::limits;
use crate::planted::{self, Bug};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Appends records to a log file.
pub struct LogWriter {
    file: Arc<dyn File>,
    path: PathBuf,
    file_number: u64,
    offset: u64,
    synced_offset: u64,
    buf: Vec<u8>,
    /// Payloads of at least [`COMPRESS_MIN_BYTES`] are compressed with LZ4 where that saves
    /// an eighth (see [`LogWriter::set_lz4`]).
    lz4: bool,
    /// The payload gathered for compression, and its compressed form (reused buffers).
    raw: Vec<u8>,
    packed: Vec<u8>,
    /// Whether the last record appended was stored compressed.
    last_compressed: bool,
    /// Pre-sizing: the file grows `presize` bytes at a time (`File::set_len`) and records are
    /// written in place at `offset`, so a sync carries no size change until the next growth.
    /// 0: records are appended.
    presize: u64,
    /// The file's size as set (pre-sized files).
    allocated: u64,
    /// The first append or sync failure. After it the file's tail is unknown (a partial record,
    /// or pages an fsync dropped), so the writer refuses everything: appending after garbage
    /// would put records where recovery cannot reach them, and a second fsync may return Ok
    /// without persisting what the first lost.
    failed: Option<Error>,
}

impl LogWriter {
    /// Writes the file header to a freshly created, empty file.
    pub fn new(
        file: Arc<dyn File>,
        path: PathBuf,
        magic: [u8; 8],
        file_number: u64,
    ) -> Result<LogWriter> {
        LogWriter::new_presized(file, path, magic, file_number, 0)
    }

    /// Writes the file header to a freshly created, empty file, pre-sizing it to `presize`
    /// bytes (and growing it by as much whenever a record would not fit). A file that cannot
    /// be sized or written in place (`Unsupported`) is appended to instead.
    pub fn new_presized(
        file: Arc<dyn File>,
        path: PathBuf,
        magic: [u8; 8],
        file_number: u64,
        presize: u64,
    ) -> Result<LogWriter> {
        let header = file_header(magic, file_number);
        let mut presize = presize.max(if presize > 0 {
            FILE_HEADER_LEN as u64
        } else {
            0
        });
        if presize > 0 {
            match file.set_len(presize) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Unsupported => presize = 0,
                Err(e) => return Err(Error::io("set_len", &path, e)),
            }
        }
        if presize > 0 {
            file.write_at(&header, 0)
                .map_err(|e| Error::io("write", &path, e))?;
        } else {
            file.append(&header)
                .map_err(|e| Error::io("append", &path, e))?;
        }
        Ok(LogWriter {
            file,
            path,
            file_number,
            offset: FILE_HEADER_LEN as u64,
            synced_offset: 0,
            buf: Vec::new(),
            lz4: false,
            raw: Vec::new(),
            packed: Vec::new(),
            last_compressed: false,
            presize,
            allocated: presize,
            failed: None,
        })
    }

    /// Writes the framed record in `buf` at the tracked offset (growing a pre-sized file first
    /// if it does not fit), or appends it.
    fn write_out(&mut self) -> Result<()> {
        if self.presize == 0 {
            return self
                .file
                .append(&self.buf)
                .map_err(|e| Error::io("append", &self.path, e));
        }
        let need = self.offset + self.buf.len() as u64;
        if need > self.allocated {
            let grown =
                (self.allocated + self.presize).max(need.div_ceil(self.presize) * self.presize);
            self.file
                .set_len(grown)
                .map_err(|e| Error::io("set_len", &self.path, e))?;
            self.allocated = grown;
        }
        // Planted: the record goes where the file ends (its pre-sized length), not where the
        // last record ended, as if the offset came from the file's size.
        let at = if planted::active(Bug::WalOffsetFromFileLength) {
            self.allocated
        } else {
            self.offset
        };
        self.file
            .write_at(&self.buf, at)
            .map_err(|e| Error::io("write", &self.path, e))?;
        self.allocated = self.allocated.max(at + self.buf.len() as u64);
        Ok(())
    }

    fn refuse_if_failed(&self) -> Result<()> {
        match &self.failed {
            Some(cause) => Err(Error::read_only(cause)),
            None => Ok(()),
        }
    }

    fn note<T>(&mut self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            self.failed.get_or_insert_with(|| e.clone());
        }
        r
    }

    /// Compresses the payloads of later records with LZ4 where that saves an eighth of them
    /// (payloads of at least [`COMPRESS_MIN_BYTES`]), or stops compressing. Off by default.
    pub fn set_lz4(&mut self, on: bool) {
        self.lz4 = on;
    }

    /// Compresses the concatenation of `parts` (`len` bytes) into `self.packed` if LZ4 is on
    /// and it pays; returns whether it did.
    fn compress(&mut self, parts: &[&[u8]], len: usize) -> bool {
        if !self.lz4 || len < COMPRESS_MIN_BYTES {
            return false;
        }
        // Planted: the gathered payload is not cleared, so the previous record's payload is
        // compressed with this one's.
        if !planted::active(Bug::WalCompressionInputKept) {
            self.raw.clear();
        }
        for p in parts {
            self.raw.extend_from_slice(p);
        }
        // Stored bytes: the compressed payload and its raw length.
        let pays = crate::lz4::compress_into(&self.raw, &mut self.packed)
            && crate::lz4::pays(self.packed.len() + varint::len(len as u64), len);
        if self.raw.capacity() > (1 << 20) {
            self.raw = Vec::new();
        }
        pays
    }

    /// Appends one record made of the concatenation of `parts`. On error a prefix of the record
    /// may be in the file, and the writer refuses every later call.
    pub fn add_record(&mut self, parts: &[&[u8]]) -> Result<()> {
        self.refuse_if_failed()?;
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > limits::RECORD_SIZE_BYTES_MAX || len > u32::MAX as usize {
            return Err(Error::InvalidArgument(format!(
                "record of {len} bytes exceeds the limit of {} bytes",
                limits::RECORD_SIZE_BYTES_MAX.min(u32::MAX as usize)
            )));
        }
        let compressed = self.compress(parts, len);
        self.last_compressed = compressed;
        let stored = if compressed { self.packed.len() } else { len };
        // Planted: the record vouches for its own offset as synced, as if the synced offset
        // were taken when the record was framed instead of at the last sync.
        let synced = if planted::active(Bug::WalVouchesForUnsyncedBytes) {
            self.offset
        } else {
            self.synced_offset
        };
        self.buf.clear();
        self.buf.reserve(RECORD_HEADER_FIXED_V4 + 30 + stored);
        self.buf.extend_from_slice(&[0u8; RECORD_HEADER_FIXED_V4]);
        varint::put(
            &mut self.buf,
            ((stored as u64) << 1) | u64::from(compressed),
        );
        varint::put(&mut self.buf, self.offset - synced);
        if compressed {
            varint::put(&mut self.buf, len as u64);
        }
        let check = header_check(
            self.file_number,
            self.offset,
            &self.buf[RECORD_HEADER_FIXED_V4..],
        );
        self.buf[4..6].copy_from_slice(&check.to_le_bytes());
        if compressed {
            self.buf.extend_from_slice(&self.packed);
        } else {
            for p in parts {
                self.buf.extend_from_slice(p);
            }
        }
        let crc = record_crc_v4(self.file_number, self.offset, &self.buf[4..]);
        self.buf[0..4].copy_from_slice(&crc.to_le_bytes());
        let r = self.write_out();
        self.note(r)?;
        self.offset += self.buf.len() as u64;
        if self.buf.capacity() > (1 << 20) {
            self.buf = Vec::new();
        }
        if self.packed.capacity() > (1 << 20) {
            self.packed = Vec::new();
        }
        Ok(())
    }

    /// Makes every record appended so far durable. After a failure, refuses every later call.
    pub fn sync(&mut self) -> Result<()> {
        self.refuse_if_failed()?;
        if self.synced_offset == self.offset {
            return Ok(());
        }
        let mut r = self.file.sync();
        if r.is_err() && planted::active(Bug::RetryFailedFsync) {
            // The fsyncgate mistake: a second fsync may return Ok without having persisted
            // what the first one lost.
            r = self.file.sync();
        }
        let r = r.map_err(|e| Error::io("sync", &self.path, e));
        self.note(r)?;
        self.synced_offset = self.offset;
        Ok(())
    }

    /// Seals the log: a sync, then an empty record (a marker) synced after it, whose synced
    /// offset vouches for every record before it. A WAL is sealed before a newer one is
    /// created, so recovery can tell a complete older WAL from one whose tail was lost.
    pub fn seal(&mut self) -> Result<()> {
        self.sync()?;
        self.add_record(&[])?;
        self.sync()
    }

    /// Whether the last record appended was stored LZ4-compressed.
    pub fn last_compressed(&self) -> bool {
        self.last_compressed
    }

    /// The first failure, if the writer has failed.
    pub fn failure(&self) -> Option<&Error> {
        self.failed.as_ref()
    }

    /// True if records were appended since the last sync.
    pub fn has_unsynced(&self) -> bool {
        self.synced_offset != self.offset
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.offset
    }

    /// Always false: a log holds at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Bytes known durable (the offset of the last successful sync).
    pub fn synced_len(&self) -> u64 {
        self.synced_offset
    }

    /// The file's number.
    pub fn file_number(&self) -> u64 {
        self.file_number
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
