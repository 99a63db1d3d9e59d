//! openraft's storage on sedimentdb: [`LogStore`] (`RaftLogStorage`) and [`StateMachine`]
//! (`RaftStateMachine`), openraft 0.9 with its `storage-v2` API.
//!
//! - The log lives in one database: entries under `l` + the big-endian index, and the vote, the
//!   committed log id and the last purged log id under `m:` keys. `save_vote` and
//!   `save_committed` are synced writes;
//!   `append` writes its entries unsynced and calls `Db::sync` once before it reports them
//!   flushed (one fsync per batch of appends, shared with any concurrent writer through group
//!   commit); `truncate` and `purge` are one range delete each, in one batch with the meta key
//!   they change, so they never leave a hole. Tombstones expire at once (`tombstone_grace` 0).
//! - The state machine lives in a second database: the application's keys under `d`, and the
//!   last applied log id and membership under `s:` keys, written in the same batch as the
//!   entries they describe. A snapshot is built from one consistent `Snapshot` read; installing
//!   one replaces the keys, the applied state and the stored snapshot in one batch, so after a
//!   crash the previous state is kept whole or replaced whole.
//! - The pair that [`open`] returns is linked: a purge up to index `i` waits until the state
//!   machine has applied or installed `i` and syncs the state machine's database first, so a
//!   purge is never durable before the state that covers the purged entries. openraft 0.9 runs
//!   the purge that follows a received snapshot next to the install, not after it; without this
//!   a power loss could keep the purge and lose the install, and the node could not restart.

// The error type is openraft's `StorageError`, which the traits require; it is large.
#![allow(clippy::result_large_err)]

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    AnyError, Entry, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogReader, StorageError,
    StorageIOError, Vote,
};
use sedimentdb::{Db, Env, Options, WriteBatch, WriteOptions};

pub mod planted;
mod state_machine;
use planted::Bug;
use serde::{Deserialize, Serialize};
pub use state_machine::StateMachine;
use std::fmt::Debug;
use std::io::Cursor;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

/// A node's id.
pub type NodeId = u64;

/// A write to the replicated key-value map.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Set { key: String, value: String },
    Delete { key: String },
}

/// What applying a request returned: the value set, or `None`.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    pub value: Option<String>,
}

openraft::declare_raft_types!(
    /// The type configuration of a sedimentdb-backed Raft.
    pub TypeConfig:
        D = Request,
        R = Response,
);

type Result<T> = std::result::Result<T, StorageError<NodeId>>;

fn io_err(
    subject: ErrorSubject<NodeId>,
    verb: ErrorVerb,
    e: impl std::error::Error + 'static,
) -> StorageError<NodeId> {
    StorageIOError::new(subject, verb, AnyError::new(&e)).into()
}

fn log_key(index: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = b'l';
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

/// Above every log key (`l` + 8 bytes), below every meta key (`m:...`).
const LOG_END: &[u8] = b"m";
const VOTE: &[u8] = b"m:vote";
const COMMITTED: &[u8] = b"m:committed";
const PURGED: &[u8] = b"m:purged";
const APPLIED: &[u8] = b"s:applied";
const MEMBERSHIP: &[u8] = b"s:membership";
const SNAPSHOT: &[u8] = b"s:snapshot";

/// Options of both databases: tombstones expire at once (the log's deletes are never needed
/// by a replica that missed them; Raft itself replicates).
fn options(base: Options) -> Options {
    Options {
        tombstone_grace: std::time::Duration::ZERO,
        ..base
    }
}

fn get_json<T: for<'a> Deserialize<'a>>(
    db: &Db,
    key: &[u8],
    subject: ErrorSubject<NodeId>,
) -> Result<Option<T>> {
    match db
        .get(key)
        .map_err(|e| io_err(subject.clone(), ErrorVerb::Read, e))?
    {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| io_err(subject, ErrorVerb::Read, e)),
    }
}

fn json<T: Serialize>(v: &T, subject: ErrorSubject<NodeId>) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| io_err(subject, ErrorVerb::Write, e))
}

/// The Raft log on a sedimentdb database.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Db>,
    /// The state machine whose state must cover a purge before it is written (see [`open`]).
    sm: Option<StateMachine>,
}

impl LogStore {
    /// Opens (or creates) the log database in `dir`, on its own: its purges do not wait for a
    /// state machine. For a Raft node use [`open`], which links the two.
    pub fn open(dir: &Path) -> std::result::Result<LogStore, sedimentdb::Error> {
        LogStore::open_with(Env::real(), dir, Options::default())
    }

    /// Opens the log database on any filesystem and clock (the simulator's), with `opts`
    /// (its tombstone grace is set to zero).
    pub fn open_with(
        env: Env,
        dir: &Path,
        opts: Options,
    ) -> std::result::Result<LogStore, sedimentdb::Error> {
        Ok(LogStore {
            db: Arc::new(Db::open_with(env, dir, options(opts))?),
            sm: None,
        })
    }

    /// Appends `entries` and calls `on_durable` once they are durable (or with the error):
    /// what `RaftLogStorage::append` does with openraft's callback.
    pub fn append_entries(
        &self,
        entries: impl IntoIterator<Item = Entry<TypeConfig>>,
        on_durable: impl FnOnce(std::io::Result<()>),
    ) -> Result<()> {
        let mut b = WriteBatch::new();
        for e in entries {
            b.put(log_key(e.log_id.index), json(&e, ErrorSubject::Logs)?);
        }
        let mut on_durable = Some(on_durable);
        let r = self
            .db
            .write(b, &WriteOptions { sync: false })
            .and_then(|()| {
                if planted::active(Bug::AppendAckBeforeSync) {
                    // Planted: reported flushed at once; the sync is left to a later write.
                    Ok(())
                } else {
                    self.db.sync()
                }
            });
        match r {
            Ok(()) => {
                // Only now are the entries durable.
                if let Some(f) = on_durable.take() {
                    f(Ok(()));
                }
                Ok(())
            }
            Err(e) => {
                if let Some(f) = on_durable.take() {
                    f(Err(std::io::Error::other(e.to_string())));
                }
                Err(io_err(ErrorSubject::Logs, ErrorVerb::Write, e))
            }
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>> {
        let lo = match range.start_bound() {
            Bound::Included(x) => Bound::Included(log_key(*x).to_vec()),
            Bound::Excluded(x) => Bound::Excluded(log_key(*x).to_vec()),
            Bound::Unbounded => Bound::Included(log_key(0).to_vec()),
        };
        let hi = match range.end_bound() {
            Bound::Included(x) => Bound::Included(log_key(*x).to_vec()),
            Bound::Excluded(x) => Bound::Excluded(log_key(*x).to_vec()),
            Bound::Unbounded => Bound::Excluded(LOG_END.to_vec()),
        };
        let mut out = Vec::new();
        for item in self.db.scan::<Vec<u8>, _>((lo, hi)) {
            let (_, v) = item.map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
            let e: Entry<TypeConfig> = serde_json::from_slice(&v)
                .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
            out.push(e);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>> {
        let last = self
            .db
            .scan::<&[u8], _>(&log_key(0)[..]..LOG_END)
            .next_back()
            .transpose()
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
        let last_log_id = match last {
            Some((_, v)) => Some(
                serde_json::from_slice::<Entry<TypeConfig>>(&v)
                    .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?
                    .log_id,
            ),
            None => None,
        };
        let last_purged_log_id: Option<LogId<NodeId>> =
            get_json(&self.db, PURGED, ErrorSubject::Store)?;
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last_log_id.or(last_purged_log_id),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<()> {
        let v = json(vote, ErrorSubject::Vote)?;
        // Durable before it returns: a synced write.
        let mut b = WriteBatch::new();
        b.put(VOTE, v);
        let sync = !planted::active(Bug::VoteUnsynced);
        self.db
            .write(b, &WriteOptions { sync })
            .map_err(|e| io_err(ErrorSubject::Vote, ErrorVerb::Write, e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>> {
        get_json(&self.db, VOTE, ErrorSubject::Vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<()> {
        let v = json(&committed, ErrorSubject::Store)?;
        let mut b = WriteBatch::new();
        b.put(COMMITTED, v);
        // Synced: entries are applied unsynced, and openraft calls this before it applies (and
        // so before a client hears back). A committed id lost to a power loss would let a
        // leader that restarts in the same term answer reads below a write it acknowledged.
        let sync = !planted::active(Bug::CommittedUnsynced);
        self.db
            .write(b, &WriteOptions { sync })
            .map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Write, e))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>> {
        Ok(get_json::<Option<LogId<NodeId>>>(&self.db, COMMITTED, ErrorSubject::Store)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
    {
        self.append_entries(entries, |r| callback.log_io_completed(r))
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        let mut b = WriteBatch::new();
        b.delete_range(log_key(log_id.index)..log_key(u64::MAX));
        b.delete(log_key(u64::MAX));
        self.db
            .write(b, &WriteOptions::default())
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Delete, e))
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        if let Some(sm) = &self.sm {
            if !planted::active(Bug::PurgeBeforeStateMachine) {
                sm.cover(log_id.index).await?;
            }
        }
        // The last purged id and the deletion in one batch: never a hole without its marker.
        let mut b = WriteBatch::new();
        if planted::active(Bug::PurgeLeavesHole) {
            // Planted: the deletion first, in a batch of its own.
            let mut first = WriteBatch::new();
            first.delete_range(log_key(0)..log_key(log_id.index + 1));
            self.db
                .write(first, &WriteOptions { sync: false })
                .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Delete, e))?;
        } else {
            b.delete_range(log_key(0)..log_key(log_id.index + 1));
        }
        b.put(PURGED, json(&log_id, ErrorSubject::Store)?);
        self.db
            .write(b, &WriteOptions { sync: false })
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Delete, e))
    }
}

/// Opens a node's log store and state machine under `dir` (`dir/log`, `dir/sm`), linked: the
/// log store purges only what the state machine durably covers (see the crate's docs).
pub fn open(dir: &Path) -> std::result::Result<(LogStore, StateMachine), sedimentdb::Error> {
    open_with(Env::real(), dir, Options::default())
}

/// Opens a node's log store and state machine under `dir` on any filesystem and clock.
pub fn open_with(
    env: Env,
    dir: &Path,
    opts: Options,
) -> std::result::Result<(LogStore, StateMachine), sedimentdb::Error> {
    let mut log = LogStore::open_with(env.clone(), &dir.join("log"), opts.clone())?;
    let sm = StateMachine::open_with(env, &dir.join("sm"), opts)?;
    log.sm = Some(sm.clone());
    Ok((log, sm))
}
