//! The state machine: the replicated key-value map on its own database, its snapshots, and
//! the progress it reports to a linked log store's purges.

use crate::planted::{self, Bug};
use crate::{
    get_json, io_err, json, options, NodeId, Request, Response, Result, TypeConfig, APPLIED,
    MEMBERSHIP, SNAPSHOT,
};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend,
    RaftSnapshotBuilder, SnapshotMeta, StoredMembership,
};
use sedimentdb::{Db, Env, Options, WriteBatch, WriteOptions};
use serde::{Deserialize, Serialize};
use std::io::Cursor;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

/// A stored snapshot: its meta and the serialized map.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
}

/// The replicated key-value map on a sedimentdb database.
#[derive(Clone)]
pub struct StateMachine {
    db: Arc<Db>,
    snapshots_built: Arc<AtomicU64>,
    progress: Arc<watch::Sender<Progress>>,
}

/// How far the state machine has come, for the log store's purges.
#[derive(Clone, Copy, Debug, Default)]
struct Progress {
    /// One past the last applied (or installed) index; 0 when nothing is.
    applied_next: u64,
    /// One past the last index known durable in the state machine's database.
    durable_next: u64,
    /// An apply or install failed: a purge waiting for it would wait forever.
    failed: bool,
}

fn next_index(l: &Option<LogId<NodeId>>) -> u64 {
    l.map_or(0, |l| l.index + 1)
}

fn data_key(k: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(k.len() + 1);
    v.push(b'd');
    v.extend_from_slice(k.as_bytes());
    v
}

impl StateMachine {
    /// Opens (or creates) the state machine's database in `dir`.
    pub fn open(dir: &Path) -> std::result::Result<StateMachine, sedimentdb::Error> {
        StateMachine::open_with(Env::real(), dir, Options::default())
    }

    /// Opens the state machine's database on any filesystem and clock, with `opts`.
    pub fn open_with(
        env: Env,
        dir: &Path,
        opts: Options,
    ) -> std::result::Result<StateMachine, sedimentdb::Error> {
        let sm = StateMachine {
            db: Arc::new(Db::open_with(env, dir, options(opts))?),
            snapshots_built: Arc::new(AtomicU64::new(0)),
            progress: Arc::new(watch::Sender::new(Progress::default())),
        };
        let applied = sm.restore_snapshot()?;
        // Not known durable: a process crash leaves unsynced writes in the page cache.
        sm.progress
            .send_modify(|p| p.applied_next = next_index(&applied));
        Ok(sm)
    }

    /// Waits until the state has applied or installed `index`, then makes it durable: what a
    /// linked log store does before it purges up to `index`.
    pub(crate) async fn cover(&self, index: u64) -> Result<()> {
        let subject = || ErrorSubject::StateMachine;
        let mut rx = self.progress.subscribe();
        let p = *rx
            .wait_for(|p| p.failed || p.applied_next > index)
            .await
            .map_err(|e| io_err(subject(), ErrorVerb::Read, e))?;
        if p.failed {
            return Err(io_err(
                subject(),
                ErrorVerb::Read,
                std::io::Error::other(format!(
                    "the state machine failed before it reached index {index}, \
                     so the log is not purged up to it"
                )),
            ));
        }
        if p.durable_next <= index {
            self.db
                .sync()
                .map_err(|e| io_err(subject(), ErrorVerb::Write, e))?;
            self.progress
                .send_modify(|q| q.durable_next = q.durable_next.max(p.applied_next));
        }
        Ok(())
    }

    /// Records what an apply or install did (or that it failed).
    fn advance(&self, applied: Option<u64>, durable: bool) {
        self.progress.send_modify(|p| match applied {
            None => p.failed = true,
            Some(next) => {
                p.applied_next = next;
                if durable {
                    p.durable_next = p.durable_next.max(next);
                }
            }
        });
    }

    /// Entries are applied unsynced, so a power loss may take the applied state back past the
    /// newest stored snapshot (which is synced), below the log's purge point: openraft could
    /// then not re-apply what was purged. So at open, an applied state older than the stored
    /// snapshot is replaced by the snapshot, in one batch. Returns the applied log id after it.
    fn restore_snapshot(&self) -> std::result::Result<Option<LogId<NodeId>>, sedimentdb::Error> {
        let corrupt = |what: String| sedimentdb::Error::InvalidArgument(what);
        let applied: Option<LogId<NodeId>> = match self.db.get(APPLIED)? {
            Some(b) => serde_json::from_slice(&b)
                .map_err(|e| corrupt(format!("the applied log id does not decode: {e}")))?,
            None => None,
        };
        let Some(b) = self.db.get(SNAPSHOT)? else {
            return Ok(applied);
        };
        let snap: StoredSnapshot = serde_json::from_slice(&b)
            .map_err(|e| corrupt(format!("the stored snapshot does not decode: {e}")))?;
        if applied >= snap.meta.last_log_id {
            return Ok(applied);
        }
        let pairs: Vec<(String, String)> = serde_json::from_slice(&snap.data)
            .map_err(|e| corrupt(format!("the stored snapshot's data does not decode: {e}")))?;
        let mut b = WriteBatch::new();
        b.delete_range(b"d".as_slice()..b"e".as_slice());
        for (k, v) in &pairs {
            b.put(data_key(k), v.as_bytes());
        }
        let enc =
            |e: serde_json::Error| corrupt(format!("the stored snapshot does not encode: {e}"));
        b.put(
            APPLIED,
            serde_json::to_vec(&snap.meta.last_log_id).map_err(enc)?,
        );
        b.put(
            MEMBERSHIP,
            serde_json::to_vec(&snap.meta.last_membership).map_err(enc)?,
        );
        self.db.write(b, &WriteOptions::default())?;
        Ok(snap.meta.last_log_id)
    }

    /// The value of `key` in the applied state.
    pub fn get(&self, key: &str) -> std::result::Result<Option<String>, sedimentdb::Error> {
        Ok(self
            .db
            .get(data_key(key))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Every key and value of the applied state, in key order.
    pub fn entries(&self) -> std::result::Result<Vec<(String, String)>, sedimentdb::Error> {
        self.db
            .prefix(b"d")
            .map(|r| {
                r.map(|(k, v)| {
                    (
                        String::from_utf8_lossy(&k[1..]).into_owned(),
                        String::from_utf8_lossy(&v).into_owned(),
                    )
                })
            })
            .collect()
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>> {
        let sm_err = |e: sedimentdb::Error| io_err(ErrorSubject::StateMachine, ErrorVerb::Read, e);
        // One consistent view: the applied state and the data it covers.
        let snap = self.db.snapshot();
        let read = |k: &[u8]| snap.get(k).map_err(sm_err);
        let applied: Option<LogId<NodeId>> = match read(APPLIED)? {
            Some(b) => serde_json::from_slice(&b)
                .map_err(|e| io_err(ErrorSubject::StateMachine, ErrorVerb::Read, e))?,
            None => None,
        };
        let membership: StoredMembership<NodeId, BasicNode> = match read(MEMBERSHIP)? {
            Some(b) => serde_json::from_slice(&b)
                .map_err(|e| io_err(ErrorSubject::StateMachine, ErrorVerb::Read, e))?,
            None => StoredMembership::default(),
        };
        let mut pairs: Vec<(String, String)> = Vec::new();
        for r in snap.prefix(b"d") {
            let (k, v) = r.map_err(sm_err)?;
            pairs.push((
                String::from_utf8_lossy(&k[1..]).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            ));
        }
        let data = json(&pairs, ErrorSubject::StateMachine)?;
        let n = self.snapshots_built.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match applied {
            Some(l) => format!("{}-{}-{n}", l.leader_id, l.index),
            None => format!("--{n}"),
        };
        let meta = SnapshotMeta {
            last_log_id: applied,
            last_membership: membership,
            snapshot_id,
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        };
        let sig = Some(meta.signature());
        self.db
            .put(
                SNAPSHOT,
                json(&stored, ErrorSubject::Snapshot(sig.clone()))?,
            )
            .map_err(|e| io_err(ErrorSubject::Snapshot(sig), ErrorVerb::Write, e))?;
        // The put was synced: everything up to the snapshot is durable.
        let next = next_index(&meta.last_log_id);
        self.progress
            .send_modify(|p| p.durable_next = p.durable_next.max(next));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>)> {
        let applied =
            get_json::<Option<LogId<NodeId>>>(&self.db, APPLIED, ErrorSubject::StateMachine)?
                .flatten();
        let membership =
            get_json(&self.db, MEMBERSHIP, ErrorSubject::StateMachine)?.unwrap_or_default();
        Ok((applied, membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
    {
        let mut b = WriteBatch::new();
        let mut out = Vec::new();
        let mut last = None;
        for e in entries {
            last = Some(e.log_id);
            match e.payload {
                EntryPayload::Blank => out.push(Response::default()),
                EntryPayload::Normal(Request::Set { key, value }) => {
                    b.put(data_key(&key), value.as_bytes());
                    out.push(Response { value: Some(value) });
                }
                EntryPayload::Normal(Request::Delete { key }) => {
                    b.delete(data_key(&key));
                    out.push(Response::default());
                }
                EntryPayload::Membership(m) => {
                    let sm = StoredMembership::new(Some(e.log_id), m);
                    b.put(MEMBERSHIP, json(&sm, ErrorSubject::StateMachine)?);
                    out.push(Response::default());
                }
            }
        }
        if let Some(l) = last {
            // The applied log id in the same batch as what it covers.
            b.put(APPLIED, json(&Some(l), ErrorSubject::StateMachine)?);
        }
        // Unsynced: after a crash, openraft applies the committed entries again.
        if let Err(e) = self.db.write(b, &WriteOptions { sync: false }) {
            self.advance(None, false);
            return Err(io_err(ErrorSubject::StateMachine, ErrorVerb::Write, e));
        }
        if let Some(l) = last {
            self.advance(Some(l.index + 1), false);
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<()> {
        let sig = Some(meta.signature());
        let subject = || ErrorSubject::Snapshot(sig.clone());
        let data = snapshot.into_inner();
        let pairs: Vec<(String, String)> =
            serde_json::from_slice(&data).map_err(|e| io_err(subject(), ErrorVerb::Read, e))?;
        // One batch: the old keys go, the new ones come, with the applied state and the stored
        // snapshot. A crash keeps all of it or none.
        let mut b = WriteBatch::new();
        b.delete_range(b"d".as_slice()..b"e".as_slice());
        if planted::active(Bug::InstallMixesState) {
            // Planted: the old keys go in a batch of their own, before the new ones come.
            let old = std::mem::take(&mut b);
            self.db
                .write(old, &WriteOptions { sync: false })
                .map_err(|e| io_err(subject(), ErrorVerb::Write, e))?;
        }
        for (k, v) in &pairs {
            b.put(data_key(k), v.as_bytes());
        }
        b.put(APPLIED, json(&meta.last_log_id, subject())?);
        b.put(MEMBERSHIP, json(&meta.last_membership, subject())?);
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        b.put(SNAPSHOT, json(&stored, subject())?);
        // Synced: once it returns, the install is durable.
        match self.db.write(b, &WriteOptions::default()) {
            Ok(()) => {
                self.advance(Some(next_index(&meta.last_log_id)), true);
                Ok(())
            }
            Err(e) => {
                self.advance(None, false);
                Err(io_err(subject(), ErrorVerb::Write, e))
            }
        }
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>> {
        let s: Option<StoredSnapshot> = get_json(&self.db, SNAPSHOT, ErrorSubject::Snapshot(None))?;
        Ok(s.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}
