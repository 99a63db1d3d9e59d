//! Data-driven tests of the engine's pure policies, from text cases in `tests/testdata/` (the
//! way Pebble tests its manifest and compaction picker): a level layout or an edit list in, the
//! expected decision out. Each case is
//!
//! ```text
//! <command> [args]
//! <input lines>
//! ----
//! <expected output lines>
//! ```
//!
//! separated by blank lines; `#` starts a comment line. Tables are written
//! `number:smallest-largest[/size_bytes][!tombstones]` with user keys; entries are
//! `key#seq,PUT:value` or `key#seq,DEL:deleted_at_ms`.

use crate::db::compaction::{pick, Compaction, Merge, Rule};
use crate::key::{self, Kind};
use crate::manifest::{ManifestState, VersionEdit};
use crate::options::{Compression, Options};
use crate::sstable::TableMeta;
use crate::version::{Version, NUM_LEVELS};
use std::path::PathBuf;

struct Case<'a> {
    line: usize,
    command: &'a str,
    args: Vec<&'a str>,
    input: Vec<&'a str>,
    expected: Vec<&'a str>,
}

fn parse_cases(text: &str) -> Vec<Case<'_>> {
    let mut cases = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((n, l)) = lines.next() {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let mut words = l.split_whitespace();
        let command = words.next().unwrap_or_default();
        let mut case = Case {
            line: n + 1,
            command,
            args: words.collect(),
            input: Vec::new(),
            expected: Vec::new(),
        };
        let mut in_expected = false;
        while let Some((_, l)) = lines.peek() {
            let l = l.trim();
            if l.is_empty() {
                break;
            }
            lines.next();
            if l.starts_with('#') {
                continue;
            }
            if l == "----" {
                in_expected = true;
            } else if in_expected {
                case.expected.push(l);
            } else {
                case.input.push(l);
            }
        }
        cases.push(case);
    }
    cases
}

/// `7:a-c/100!2` as table metadata: number 7, keys a to c, 100 bytes, 2 tombstones.
fn table(spec: &str) -> TableMeta {
    let (number, rest) = spec.split_once(':').expect("number:range");
    let (rest, tombstones) = rest.split_once('!').unwrap_or((rest, "0"));
    let (range, size) = rest.split_once('/').unwrap_or((rest, "1"));
    let (lo, hi) = range.split_once('-').expect("smallest-largest");
    TableMeta {
        number: number.parse().expect("table number"),
        size_bytes: size.parse().expect("size"),
        entries: 1,
        tombstones: tombstones.parse().expect("tombstones"),
        smallest_seq: 1,
        largest_seq: 1,
        smallest: key::encode(lo.as_bytes(), 1, Kind::Put),
        largest: key::encode(hi.as_bytes(), 1, Kind::Put),
    }
}

/// Lines `L<n>: table table ...` as a version.
fn version(lines: &[&str]) -> Version<TableMeta> {
    let mut tables = Vec::new();
    for l in lines.iter().filter(|l| l.starts_with('L')) {
        let (level, specs) = l.split_once(':').expect("L<n>: tables");
        let level: usize = level[1..].parse().expect("level number");
        tables.extend(specs.split_whitespace().map(|s| (level, table(s))));
    }
    Version::from_tables(tables)
}

/// `key=value` arguments.
fn arg<'a>(args: &[&'a str], name: &str) -> Option<&'a str> {
    args.iter()
        .find_map(|a| a.strip_prefix(name)?.strip_prefix('='))
}

fn options(args: &[&str]) -> Options {
    let mut o = Options::default();
    let num = |n: &str| arg(args, n).map(|v| v.parse::<u64>().expect("number"));
    if let Some(v) = num("l0_trigger") {
        o.l0_compaction_trigger = v as usize;
    }
    if let Some(v) = num("level1_bytes") {
        o.level1_size_bytes = v;
    }
    if let Some(v) = num("multiplier") {
        o.level_size_multiplier = v;
    }
    // `dynamic`: dynamic level targets; without it, static ones (the engine's default).
    o.dynamic_level_bytes = args.contains(&"dynamic");
    // `codecs=none,lz4`: the codec per level (default LZ4 everywhere).
    if let Some(v) = arg(args, "codecs") {
        o.compression_per_level = v
            .split(',')
            .map(|c| match c {
                "none" => Compression::None,
                "lz4" => Compression::Lz4,
                z => Compression::Zstd(
                    z.strip_prefix("zstd")
                        .expect("codec")
                        .parse()
                        .expect("level"),
                ),
            })
            .collect();
    }
    o
}

fn numbers(ts: &[TableMeta]) -> String {
    let n: Vec<String> = ts.iter().map(|t| t.number.to_string()).collect();
    format!("[{}]", n.join(" "))
}

fn show_compaction(c: Option<Compaction<TableMeta>>, o: &Options) -> Vec<String> {
    match c {
        None => vec!["none".into()],
        Some(c) => vec![format!(
            "L{} -> L{}: inputs {} next {}{}",
            c.level,
            c.output_level,
            numbers(&c.inputs),
            numbers(&c.next),
            if c.is_trivial_move(o) {
                " (trivial move)"
            } else {
                ""
            }
        )],
    }
}

fn run_pick(c: &Case) -> Vec<String> {
    let v = version(&c.input);
    let o = options(&c.args);
    let mut pointers: [Vec<u8>; NUM_LEVELS] = Default::default();
    for l in c.input.iter().filter_map(|l| l.strip_prefix("pointer ")) {
        let (level, k) = l.split_once('=').expect("pointer L<n>=key");
        pointers[level[1..].parse::<usize>().expect("level")] = k.as_bytes().to_vec();
    }
    // `claimed=3,5`: tables a running compaction claimed, which a pick must pass over.
    let claimed: Vec<u64> = arg(&c.args, "claimed").map_or(Vec::new(), |l| {
        l.split(',')
            .map(|n| n.parse().expect("table number"))
            .collect()
    });
    let free = |c: &Compaction<TableMeta>| c.all_inputs().all(|t| !claimed.contains(&t.number));
    let mut out = show_compaction(pick::pick_where(&v, &o, &mut pointers, free), &o);
    // Repeated picks show the round-robin pointer moving.
    let again: usize = arg(&c.args, "repeat").map_or(0, |n| n.parse().expect("repeat"));
    for _ in 0..again {
        out.extend(show_compaction(
            pick::pick_where(&v, &o, &mut pointers, free),
            &o,
        ));
    }
    out
}

/// `key#seq,KIND:value` as an internal key and value.
fn entry(spec: &str) -> (Vec<u8>, Vec<u8>) {
    let (k, rest) = spec.split_once('#').expect("key#seq,KIND:value");
    let (seq, rest) = rest.split_once(',').expect("seq,KIND");
    let (kind, value) = rest.split_once(':').expect("KIND:value");
    let seq = seq.parse().expect("seq");
    match kind {
        "PUT" => (key::encode(k.as_bytes(), seq, Kind::Put), value.into()),
        "DEL" => (
            key::encode(k.as_bytes(), seq, Kind::Delete),
            key::tombstone_value(value.parse().expect("deletion time")).to_vec(),
        ),
        _ => panic!("unknown kind {kind}"),
    }
}

fn show_entry(ikey: &[u8], value: &[u8]) -> String {
    let p = key::parse(ikey).expect("well-formed");
    let k = String::from_utf8_lossy(p.user_key);
    match p.kind {
        Kind::Put => format!("{k}#{},PUT:{}", p.seq, String::from_utf8_lossy(value)),
        Kind::Delete => format!(
            "{k}#{},DEL:{}",
            p.seq,
            key::deletion_time(value).expect("8 bytes")
        ),
        Kind::RangeDelete => format!("{k}#{},RANGEDEL", p.seq),
    }
}

fn run_merge(c: &Case) -> Vec<String> {
    let v = version(&c.input);
    let num = |n: &str| arg(&c.args, n).map_or(0, |v| v.parse::<u64>().expect("number"));
    // `snapshots=3,7`: the live snapshots' sequence numbers.
    let snapshots: Vec<u64> = arg(&c.args, "snapshots").map_or(Vec::new(), |s| {
        s.split(',').map(|n| n.parse().expect("number")).collect()
    });
    let no_ranges = crate::rangedel::Fragments::default();
    let mut entries: Vec<(Vec<u8>, Vec<u8>)> = c
        .input
        .iter()
        .filter(|l| !l.starts_with('L'))
        .flat_map(|l| l.split_whitespace().map(entry))
        .collect();
    entries.sort_by(|a, b| key::compare(&a.0, &b.0));
    let output_level = num("output") as usize;
    // The compaction's key span is that of its entries, as the engine's is its inputs'.
    let user_keys = || {
        entries
            .iter()
            .map(|e| key::parse(&e.0).expect("well-formed").user_key)
    };
    let lo = user_keys().min().unwrap_or_default();
    let hi = user_keys().max().unwrap_or_default();
    let mut merge = Merge::new(
        Rule {
            version: &v,
            output_level,
            now_ms: num("now"),
            grace_ms: num("grace"),
            bottom: v.nothing_deeper(output_level, lo, hi),
        },
        &snapshots,
        &no_ranges,
    );
    let mut out = Vec::new();
    let mut emit = |k: &[u8], v: &[u8]| {
        out.push(show_entry(k, v));
        Ok(())
    };
    for (k, v) in &entries {
        merge
            .offer(k, v, || (PathBuf::from("case"), 0), &mut emit)
            .expect("merge");
    }
    let merge = merge.finish(&mut emit).expect("finish");
    out.push(format!("tombstones dropped: {}", merge.tombstones_dropped));
    out.push(format!("sequence numbers zeroed: {}", merge.seqs_zeroed));
    out
}

fn run_edits(c: &Case) -> Vec<String> {
    let mut state = ManifestState::default();
    let mut out = Vec::new();
    for l in &c.input {
        let w: Vec<&str> = l.split_whitespace().collect();
        let mut e = VersionEdit::default();
        match w.as_slice() {
            ["add", level, spec] => e
                .added
                .push((level[1..].parse().expect("level"), table(spec))),
            ["delete", level, n] => e.deleted.push((
                level[1..].parse().expect("level"),
                n.parse().expect("number"),
            )),
            ["next", n] => e.next_file = Some(n.parse().expect("number")),
            ["log", n] => e.log_number = Some(n.parse().expect("number")),
            ["seq", n] => e.last_seq = Some(n.parse().expect("number")),
            _ => panic!("unknown edit line {l:?}"),
        }
        // Every edit also survives its own encoding.
        let decoded = VersionEdit::decode(&e.encode()).expect("round trip");
        assert_eq!(decoded, e, "edit {l:?} does not round-trip");
        if let Err(r) = state.apply(&e) {
            out.push(format!("error: {r}"));
        }
    }
    out.push(format!(
        "next {} log {} seq {}",
        state.next_file, state.log_number, state.last_seq
    ));
    for (n, (level, m)) in &state.tables {
        let lo = String::from_utf8_lossy(key::user_key(&m.smallest)).into_owned();
        let hi = String::from_utf8_lossy(key::user_key(&m.largest)).into_owned();
        out.push(format!("L{level} {n}:{lo}-{hi}"));
    }
    out
}

fn run_file(name: &str, text: &str) {
    let cases = parse_cases(text);
    assert!(!cases.is_empty(), "{name} holds no case");
    for c in &cases {
        let got = match c.command {
            "pick" => run_pick(c),
            "merge" => run_merge(c),
            "edits" => run_edits(c),
            other => panic!("{name}:{}: unknown command {other:?}", c.line),
        };
        assert_eq!(
            got,
            c.expected,
            "{name}:{}: `{} {}` gave\n{}\n",
            c.line,
            c.command,
            c.args.join(" "),
            got.join("\n")
        );
    }
}

#[test]
fn compaction_pick() {
    run_file(
        "compaction_pick.txt",
        include_str!("../tests/testdata/compaction_pick.txt"),
    );
}

#[test]
fn tombstone_rule() {
    run_file(
        "tombstone_rule.txt",
        include_str!("../tests/testdata/tombstone_rule.txt"),
    );
}

#[test]
fn version_edits() {
    run_file(
        "version_edits.txt",
        include_str!("../tests/testdata/version_edits.txt"),
    );
}
