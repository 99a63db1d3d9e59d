//! One sorted level (1 or deeper) as one source of the merging iterator: its tables do not
//! overlap, so a seek binary-searches the table that may hold the target and opens only that
//! one, and moving past a table's end opens the next (LevelDB's two-level iterator over a
//! level). A merging iterator over every table would seek each of them instead.

use crate::error::Result;
use crate::key;
use crate::planted::{self, Bug};
use crate::sstable::{Table, TableIter};
use std::path::PathBuf;
use std::sync::Arc;

pub(crate) struct LevelIter {
    /// The level's tables, in key order.
    tables: Vec<Arc<Table>>,
    fill_cache: bool,
    /// The open table: its index in `tables` and its iterator.
    open: Option<(usize, TableIter)>,
    /// Moves into the next table (forward) and into the previous one (backward).
    steps: [u64; 2],
}

impl LevelIter {
    /// A source over `tables`: a sorted level's tables, in key order.
    pub fn new(tables: Vec<Arc<Table>>, fill_cache: bool) -> LevelIter {
        debug_assert!(tables.windows(2).all(|w| key::compare(
            &w[0].meta().largest,
            &w[1].meta().smallest
        )
        .is_lt()));
        LevelIter {
            tables,
            fill_cache,
            open: None,
            steps: [0; 2],
        }
    }

    /// The iterator of table `i`, opened if it is not the open one.
    fn table(&mut self, i: usize) -> &mut TableIter {
        if self.open.as_ref().is_none_or(|(j, _)| *j != i) {
            let t = TableIter::with_fill(self.tables[i].clone(), self.fill_cache);
            self.open = Some((i, t));
        }
        let (_, t) = self.open.as_mut().expect("opened above");
        t
    }

    /// Forward past tables with nothing left, to the next entry.
    fn skip_forward(&mut self) -> Result<()> {
        while let Some((i, t)) = &self.open {
            if t.valid() || i + 1 >= self.tables.len() {
                break;
            }
            let next = i + 1;
            self.steps[0] += 1;
            self.table(next).seek_to_first()?;
        }
        Ok(())
    }

    /// Backward past tables with nothing before the position, to the previous entry.
    fn skip_backward(&mut self) -> Result<()> {
        while let Some((i, t)) = &self.open {
            if t.valid() || *i == 0 {
                break;
            }
            let before = i - 1;
            self.steps[1] += 1;
            self.table(before).seek_to_last()?;
        }
        Ok(())
    }

    /// How often it moved into the next table and into the previous one.
    pub fn steps(&self) -> [u64; 2] {
        self.steps
    }

    /// Moves to the first entry `>= ikey` (the first entry if `None`).
    pub fn seek(&mut self, ikey: Option<&[u8]>) -> Result<()> {
        let Some(k) = ikey else {
            if self.tables.is_empty() {
                self.open = None;
                return Ok(());
            }
            self.table(0).seek_to_first()?;
            return self.skip_forward();
        };
        // The first table whose largest key is at or after the target: every key of the
        // tables before it sorts before the target.
        let i = if planted::active(Bug::LevelSeekBySmallest) {
            self.tables
                .partition_point(|t| key::compare(&t.meta().smallest, k).is_lt())
        } else {
            self.tables
                .partition_point(|t| key::compare(&t.meta().largest, k).is_lt())
        };
        if i == self.tables.len() {
            self.open = None;
            return Ok(());
        }
        self.table(i).seek(k)?;
        self.skip_forward()
    }

    /// Moves to the last entry.
    pub fn seek_to_last(&mut self) -> Result<()> {
        let Some(last) = self.tables.len().checked_sub(1) else {
            self.open = None;
            return Ok(());
        };
        self.table(last).seek_to_last()?;
        self.skip_backward()
    }

    pub fn valid(&self) -> bool {
        self.open.as_ref().is_some_and(|(_, t)| t.valid())
    }

    fn current(&self) -> &TableIter {
        let (_, t) = self
            .open
            .as_ref()
            .expect("a valid level iterator has a table open");
        t
    }

    /// Only on a valid iterator.
    pub fn key(&self) -> &[u8] {
        self.current().key()
    }

    /// Only on a valid iterator.
    pub fn value(&self) -> &[u8] {
        self.current().value()
    }

    /// The open table and the offset of its current block.
    pub fn origin(&self) -> (PathBuf, u64) {
        self.open
            .as_ref()
            .map_or((PathBuf::new(), 0), |(_, t)| t.origin())
    }

    /// Moves to the next entry. Only on a valid iterator.
    pub fn advance(&mut self) -> Result<()> {
        if let Some((_, t)) = &mut self.open {
            t.advance()?;
        }
        self.skip_forward()
    }

    /// Moves to the previous entry. Only on a valid iterator.
    pub fn prev(&mut self) -> Result<()> {
        if let Some((_, t)) = &mut self.open {
            t.prev()?;
        }
        self.skip_backward()
    }
}
