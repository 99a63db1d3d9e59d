//! Shared helpers: every scenario runs on the real filesystem (a temporary directory) and on
//! the simulator's `SimFs`.
#![allow(dead_code)]

use sedimentdb::{Background, Db, Env, Options, Result};
use sedimentdb_sim::World;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub enum Backend {
    Std(tempfile::TempDir),
    Sim(World),
}

pub struct Case {
    pub backend: Backend,
    pub path: PathBuf,
}

impl Case {
    pub fn std() -> Case {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("db");
        Case {
            backend: Backend::Std(dir),
            path,
        }
    }

    pub fn sim() -> Case {
        Case {
            backend: Backend::Sim(World::new()),
            path: PathBuf::from("/db"),
        }
    }

    pub fn name(&self) -> &'static str {
        match self.backend {
            Backend::Std(_) => "StdFs",
            Backend::Sim(_) => "SimFs",
        }
    }

    pub fn env(&self) -> Env {
        match &self.backend {
            Backend::Std(_) => Env::real(),
            Backend::Sim(w) => w.env(),
        }
    }

    pub fn open(&self, opts: Options) -> Result<Db> {
        Db::open_with(self.env(), &self.path, opts)
    }

    /// Options that make tables small, so a few hundred writes make many tables.
    pub fn small(&self) -> Options {
        Options {
            memtable_size_bytes: 8 << 10,
            block_size_bytes: 256,
            background: match self.backend {
                Backend::Std(_) => Background::Threads,
                Backend::Sim(_) => Background::Inline,
            },
            ..Options::default()
        }
    }
}

/// Runs `f` on a fresh case of each backend, naming the backend if it panics.
pub fn on_both(f: impl Fn(&Case)) {
    for case in [Case::std(), Case::sim()] {
        let name = case.name();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&case)));
        if let Err(e) = r {
            eprintln!("scenario failed on {name}");
            std::panic::resume_unwind(e);
        }
    }
}

/// Asserts that a full scan and point reads of every model key equal the model.
pub fn assert_matches(db: &Db, model: &BTreeMap<Vec<u8>, Vec<u8>>) {
    let all: Vec<(Vec<u8>, Vec<u8>)> = db
        .scan::<&[u8], _>(..)
        .collect::<Result<_>>()
        .expect("scan");
    let want: Vec<(Vec<u8>, Vec<u8>)> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(all.len(), want.len(), "scan length");
    assert!(all == want, "scan differs from the model");
    for (k, v) in model {
        assert_eq!(
            db.get(k).expect("get").as_deref(),
            Some(&v[..]),
            "get {k:?}"
        );
    }
}

pub fn key(i: u64) -> Vec<u8> {
    format!("key{i:08}").into_bytes()
}

pub fn value(i: u64, round: u64) -> Vec<u8> {
    format!("value-{i}-{round}-{}", "x".repeat((i % 50) as usize)).into_bytes()
}
