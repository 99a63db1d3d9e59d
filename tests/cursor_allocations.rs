//! A cursor's walk allocates per block or per table it enters, never per entry: its key and
//! value are slices into buffers it reuses. Counted with an allocator that counts this
//! thread's allocations (the engine runs inline, so no other thread does the reading).
use sedimentdb::{Background, Db, Options};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counter is a
// const-initialized thread-local, which needs no allocation.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|a| a.set(a.get() + 1));
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|a| a.set(a.get() + 1));
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn a_cursor_walk_allocates_per_block_not_per_entry() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        background: Background::Inline,
        memtable_size_bytes: 256 << 10,
        table_size_bytes: 64 << 10,
        level1_size_bytes: 256 << 10,
        ..Options::default()
    };
    let db = Db::open(dir.path().join("db"), opts).unwrap();
    let n = 20_000u32;
    for i in 0..n {
        // Spread over the key space, so every level's tables cover all of it.
        let k = i.wrapping_mul(2_654_435_761).to_be_bytes();
        db.put(k, [i as u8; 100]).unwrap();
    }
    db.compact().unwrap();
    // Some versions in the memtable as well, over the tables.
    for i in (0..n).step_by(7) {
        db.put(i.wrapping_mul(2_654_435_761).to_be_bytes(), [1u8; 100])
            .unwrap();
    }
    let st = db.stats();
    assert!(st.levels.iter().skip(1).any(|l| l.tables >= 4), "{st}");

    let mut c = db.cursor::<&[u8], _>(..);
    let before = allocations();
    c.seek_to_first();
    let mut forward = 0u64;
    while c.valid() {
        assert_eq!(c.value().len(), 100);
        forward += 1;
        c.next();
    }
    c.status().unwrap();
    let walked_forward = allocations() - before;
    assert_eq!(forward, u64::from(n));

    let before = allocations();
    c.seek_to_last();
    let mut backward = 0u64;
    while c.valid() {
        backward += 1;
        c.prev();
    }
    c.status().unwrap();
    let walked_backward = allocations() - before;
    assert_eq!(backward, u64::from(n));

    // A data block holds about 30 of these entries: one allocation per 20 entries is far
    // above what entering blocks and tables costs, and far below one per entry.
    let bound = u64::from(n) / 20;
    eprintln!(
        "allocations walking {n} entries: {walked_forward} forward, {walked_backward} backward"
    );
    assert!(
        walked_forward < bound && walked_backward < bound,
        "{walked_forward} allocations walking forward and {walked_backward} backward over {n} \
         entries (bound {bound})"
    );
    // The cursor adds its moves between tables to the statistics when it is dropped.
    drop(c);
    let st2 = db.stats();
    assert!(
        st2.level_table_steps[0] > 0 && st2.level_table_steps[1] > 0,
        "the walks crossed tables: {:?}",
        st2.level_table_steps
    );
}
