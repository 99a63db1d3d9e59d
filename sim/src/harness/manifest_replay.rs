//! The `manifest_replay` harness: loading a manifest and reading `CURRENT` from arbitrary
//! bytes, and loading a valid manifest built from the input, then the same manifest damaged.

use super::{is_clear_error, le_u64, mutate, mutation_choices, Input};
use crate::SimFs;
use sedimentdb::internals::key::{self, Kind};
use sedimentdb::internals::manifest::{self, ManifestState, ManifestWriter, VersionEdit};
use sedimentdb::internals::sstable::TableMeta;
use sedimentdb::{Error, Fs};
use std::path::Path;

/// `manifest_replay`: arbitrary bytes as a manifest and as `CURRENT`, and mutations of valid
/// ones. Loading returns the state that was written, a prefix of its edits, or a clear error.
pub fn manifest_replay(data: &[u8]) {
    let dir = Path::new("/db");
    load_raw(data, dir);
    // A valid manifest with a few edits, then damaged.
    let fs = SimFs::new();
    fs.create_dir_all(dir).expect("in memory");
    let states = write_manifest(&fs, dir, &mut Input::new(data));
    let loaded = manifest::load(&fs, dir, 5).expect("an intact manifest loads");
    assert_eq!(&loaded, states.last().expect("one at least"));
    let name = dir.join("MANIFEST-000005");
    let mut bytes = fs.read_file(&name).expect("written");
    mutate(&mut bytes, &mut mutation_choices(data));
    fs.remove_file(&name).expect("exists");
    fs.write_file(&name, &bytes).expect("in memory");
    match manifest::load(&fs, dir, 5) {
        Ok(s) => assert!(
            states.contains(&s),
            "a damaged manifest loaded as a state never written"
        ),
        Err(e) => assert!(is_clear_error(&e), "unclear error: {e}"),
    }
}

/// The bytes as they are, as a manifest under the number its header names (so that a real one
/// from the corpus loads) and as `CURRENT`: a state or a clear error.
fn load_raw(data: &[u8], dir: &Path) {
    let fs = SimFs::new();
    fs.create_dir_all(dir).expect("in memory");
    let named = le_u64(data, 12).unwrap_or(3);
    fs.write_file(
        &dir.join(sedimentdb::internals::filename::manifest_name(named)),
        data,
    )
    .expect("in memory");
    if let Err(e) = manifest::load(&fs, dir, named) {
        assert!(is_clear_error(&e), "unclear error: {e}");
    }
    fs.write_file(&dir.join("CURRENT"), data)
        .expect("in memory");
    match manifest::read_current(&fs, dir) {
        Ok(_) | Err(Error::NotADatabase { .. }) => {}
        Err(e) => assert!(is_clear_error(&e), "unclear error: {e}"),
    }
}

/// Writes manifest 5 with up to seven edits chosen by the input; returns every state it passed
/// through, the first and the last included.
fn write_manifest(fs: &SimFs, dir: &Path, inp: &mut Input) -> Vec<ManifestState> {
    let mut state = ManifestState {
        next_file: 10,
        ..ManifestState::default()
    };
    let mut w = ManifestWriter::create(fs, dir, 5, &state).expect("in memory");
    let mut states = vec![state.clone()];
    for i in 0..inp.u8() % 8 {
        let meta = TableMeta {
            number: 100 + u64::from(i),
            size_bytes: u64::from(inp.u16()),
            entries: 1,
            smallest: key::encode(inp.bytes(8), 1, Kind::Put),
            largest: key::encode(inp.bytes(8), 1, Kind::Put),
            ..TableMeta::default()
        };
        let mut edit = VersionEdit {
            last_seq: Some(u64::from(inp.u32())),
            added: vec![(u32::from(inp.u8() % 7), meta)],
            ..VersionEdit::default()
        };
        if i > 0 && inp.u8().is_multiple_of(2) {
            let victim = 100 + u64::from(i - 1);
            if let Some((l, _)) = state.tables.get(&victim) {
                edit.deleted.push((*l, victim));
            }
        }
        state.apply(&edit).expect("a consistent edit");
        w.append(&edit).expect("in memory");
        states.push(state.clone());
    }
    states
}
