//! The simulator's command line.
//!
//! ```text
//! sedimentdb-sim --seed 42            run one seed
//! sedimentdb-sim --seeds 0..10000     run a range of seeds
//! sedimentdb-sim --time 10m           run new seeds until the time is up
//! sedimentdb-sim --seed 42 --shrink   shrink a failing seed and print a regression test
//! sedimentdb-sim --seed 42 --plant AckBeforeWalSync   (with --features planted-bugs)
//! ```
//!
//! Built with `RUSTFLAGS="--cfg shuttle"` (and its own `CARGO_TARGET_DIR`), every seed also runs
//! as a threaded seed (`sedimentdb_sim::threaded`): the real threaded engine and 1 to 8 client
//! threads under a scheduler seeded from the seed. The summary then counts both.
//!
//! The arguments are parsed by `clap`; the progress bar is `indicatif`'s, drawn on stderr only
//! when stderr is a terminal and `--quiet` is not given. The bar only watches: which seeds run,
//! and the summary on stdout, do not depend on it.

use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sedimentdb_sim::runner::{run_seed, RunSummary};
use sedimentdb_sim::shrink::{regression_test, shrink};
use sedimentdb_sim::workload::{generate, Knobs};
use std::ops::Range;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Runs sedimentdb on the simulated filesystem and clock, one seed at a time, checks every
/// seed's outcome against a model, and prints a summary to stdout.
///
/// Without --seed, --seeds or --time, it runs seed 0. A failing seed is printed to stderr with
/// the command that replays it, and the exit status is then nonzero.
#[derive(Parser, Debug)]
#[command(
    name = "sedimentdb-sim",
    after_help = "\
Examples:
  sedimentdb-sim --seed 42            run one seed
  sedimentdb-sim --seeds 0..10000     run a range of seeds
  sedimentdb-sim --time 10m           run new seeds until the time is up
  sedimentdb-sim --seed 42 --shrink   shrink a failing seed and print a regression test
  sedimentdb-sim --seed 42 --plant AckBeforeWalSync   (with --features planted-bugs)"
)]
struct Args {
    /// Run the one seed N (with --time: start from seed N)
    #[arg(long, value_name = "N", conflicts_with = "seeds",
          value_parser = clap::value_parser!(u64).range(..u64::MAX))]
    seed: Option<u64>,

    /// Run the seeds A, A+1, ..., B-1 (with --time: start from seed A; B is ignored)
    #[arg(long, value_name = "A..B", value_parser = parse_seed_range)]
    seeds: Option<Range<u64>>,

    /// Run new seeds until DURATION has passed: a whole number with s, m or h (30s, 10m, 1h)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    time: Option<Duration>,

    /// On a failure, shrink the failing seed's steps and print a regression test to stdout
    /// (not in a build with --cfg shuttle)
    #[arg(long)]
    shrink: bool,

    /// Plant the engine bug BUG, to check that the simulator catches it (needs a build with
    /// --features planted-bugs; an unknown name lists the known ones)
    #[arg(long, value_name = "BUG", value_parser = parse_bug)]
    plant: Option<Planted>,

    /// Do not draw the progress bar on stderr (it is never drawn when stderr is not a terminal)
    #[arg(long)]
    quiet: bool,
}

impl Args {
    /// The seeds to run; with `--time`, only the start counts.
    fn seed_range(&self) -> Range<u64> {
        match (&self.seeds, self.seed) {
            (Some(r), _) => r.clone(),
            // `value_parser` keeps `s` below `u64::MAX`.
            (None, Some(s)) => s..s + 1,
            (None, None) => 0..1,
        }
    }
}

/// `A..B` with `A <= B`, both `u64`.
fn parse_seed_range(s: &str) -> Result<Range<u64>, String> {
    let bad = || "expected A..B with whole numbers A <= B, e.g. 0..10000".to_string();
    let (a, b) = s.split_once("..").ok_or_else(bad)?;
    let a: u64 = a.parse().map_err(|_| bad())?;
    let b: u64 = b.parse().map_err(|_| bad())?;
    if a > b {
        return Err(bad());
    }
    Ok(a..b)
}

/// A whole number of seconds, minutes or hours: `30s`, `10m`, `1h`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || "expected a whole number with s, m or h, e.g. 30s, 10m, 1h".to_string();
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(bad()),
    };
    Ok(Duration::from_secs(
        n.checked_mul(per_unit).ok_or_else(bad)?,
    ))
}

#[cfg(feature = "planted-bugs")]
type Planted = sedimentdb_sim::Bug;

/// A build without planted bugs has no bug to plant.
#[cfg(not(feature = "planted-bugs"))]
#[derive(Clone, Copy, Debug)]
enum Planted {}

#[cfg(feature = "planted-bugs")]
fn parse_bug(name: &str) -> Result<Planted, String> {
    Planted::ALL
        .into_iter()
        .find(|b| format!("{b:?}") == name)
        .ok_or_else(|| {
            let known: Vec<String> = Planted::ALL.iter().map(|b| format!("{b:?}")).collect();
            format!("unknown bug; known: {}", known.join(", "))
        })
}

#[cfg(not(feature = "planted-bugs"))]
fn parse_bug(_: &str) -> Result<Planted, String> {
    Err(
        "--plant needs: cargo run --release -p sedimentdb-sim --features planted-bugs -- ..."
            .to_string(),
    )
}

#[cfg(feature = "planted-bugs")]
fn plant(bug: Option<Planted>) {
    if let Some(bug) = bug {
        sedimentdb::internals::planted::plant(Some(bug));
    }
}

#[cfg(not(feature = "planted-bugs"))]
fn plant(bug: Option<Planted>) {
    if let Some(bug) = bug {
        match bug {}
    }
}

/// The progress bar on stderr: hidden with `--quiet`, and (by `indicatif`) when stderr is not a
/// terminal. Its length is the number of seeds, or with `--time` the milliseconds to run.
fn progress_bar(args: &Args, seeds: &Range<u64>) -> ProgressBar {
    if args.quiet {
        return ProgressBar::hidden();
    }
    let len = match args.time {
        Some(t) => u64::try_from(t.as_millis()).unwrap_or(u64::MAX),
        None => seeds.end - seeds.start,
    };
    let bar = ProgressBar::with_draw_target(Some(len.max(1)), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "[{elapsed_precise}] [{bar:30}] {percent:>3}% {msg} (eta {eta})",
        )
        .expect("a valid progress template")
        .progress_chars("#."),
    );
    bar.set_message("seeds 0 ops 0 crashes 0 failures 0");
    bar
}

fn print_summary(total: &RunSummary, seeds: u64, failures: u64, elapsed: Duration) {
    println!("== summary");
    println!("seeds run:          {seeds}");
    println!("elapsed:            {:.1} s", elapsed.as_secs_f64());
    println!("steps:              {}", total.steps);
    println!("db operations:      {}", total.ops);
    println!("filesystem calls:   {}", total.fs_calls);
    println!("crashes recovered:  {}", total.crashes_recovered);
    println!("steps by kind:");
    for (k, v) in &total.step_kinds {
        println!("  {k:<30} {v}");
    }
    println!("faults injected:");
    for (k, v) in &total.injected {
        println!("  {k:<30} {v}");
    }
    println!("faults met by the engine:");
    for (k, v) in &total.met {
        println!("  {k:<30} {v}");
    }
    println!("code probes:");
    for p in sedimentdb_sim::runner::PROBES {
        let n = total.probes.get(*p).copied().unwrap_or(0);
        println!("  {p:<40} {n}");
    }
    for (k, v) in total
        .probes
        .iter()
        .filter(|(k, _)| !sedimentdb_sim::runner::PROBES.contains(&k.as_str()))
    {
        println!("  {k:<40} {v}");
    }
    println!("failures:           {failures}");
}

/// The threaded seeds' totals.
#[cfg(shuttle)]
#[derive(Default)]
struct Threaded {
    total: sedimentdb_sim::threaded::ThreadedSummary,
    endings: std::collections::BTreeMap<String, u64>,
    seeds: u64,
}

#[cfg(shuttle)]
impl Threaded {
    fn run(&mut self, seed: u64) -> Result<(), String> {
        self.seeds += 1;
        let s = sedimentdb_sim::threaded::run_threaded_seed(seed)?;
        self.total.absorb(&s, &mut self.endings);
        Ok(())
    }

    fn print(&self) {
        let t = &self.total;
        println!("== threaded seeds");
        println!("seeds run:          {}", self.seeds);
        println!("client threads:     {}", t.client_threads);
        println!(
            "writes:             {} in {} WAL records",
            t.writes, t.wal_records
        );
        println!(
            "commit groups by writers: 1: {}, 2: {}, 3-4: {}, 5+: {}",
            t.groups_by_size[0], t.groups_by_size[1], t.groups_by_size[2], t.groups_by_size[3]
        );
        println!("WALs replayed:      {}", t.wals_replayed);
        println!("write stalls:       {}", t.write_stalls);
        println!("flushes:            {}", t.flushes);
        println!(
            "flushes racing a compaction: {}",
            t.flushes_during_compaction
        );
        println!("compactions:        {}", t.compactions);
        println!("compactions beside another: {}", t.parallel_compactions);
        println!("filesystem calls:   {}", t.fs_calls);
        println!("endings:");
        for (k, v) in &self.endings {
            println!("  {k:<30} {v}");
        }
        println!("faults injected:");
        for (k, v) in &t.injected {
            println!("  {k:<30} {v}");
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let range = args.seed_range();
    plant(args.plant);
    let bar = progress_bar(&args, &range);
    // `indicatif` hides a bar on a stderr that is not a terminal; skip the updates then.
    let show = !bar.is_hidden();
    let start = Instant::now();
    let mut total = RunSummary::default();
    let (mut seeds, mut failures) = (0u64, 0u64);
    let mut seed = range.start;
    #[cfg(shuttle)]
    let mut threaded = Threaded::default();
    loop {
        match args.time {
            Some(t) if start.elapsed() >= t => break,
            None if seed >= range.end => break,
            _ => {}
        }
        seeds += 1;
        #[cfg(shuttle)]
        if let Err(f) = threaded.run(seed) {
            failures += 1;
            bar.suspend(|| eprintln!("\n{f}"));
        }
        #[cfg(shuttle)]
        let outcome = sedimentdb_sim::threaded::under_scheduler(seed, move || run_seed(seed))
            .expect("a single-threaded run finishes");
        #[cfg(not(shuttle))]
        let outcome = run_seed(seed);
        match outcome {
            Ok(s) => total.absorb(&s),
            Err(f) => {
                failures += 1;
                bar.suspend(|| {
                    eprintln!("\n{f}");
                    if args.shrink && cfg!(shuttle) {
                        eprintln!("shrink from a build without --cfg shuttle");
                    } else if args.shrink {
                        let knobs = Knobs::for_seed(seed);
                        let steps = generate(seed, &knobs);
                        let (small, f2) = shrink(seed, &knobs, &steps, 3000);
                        eprintln!(
                            "\nshrunk from {} to {} steps; it still fails with:\n{f2}\n",
                            steps.len(),
                            small.len()
                        );
                        println!("{}", regression_test(seed, &knobs, &small, &f2));
                    }
                });
                if args.time.is_none() && range.end - range.start == 1 {
                    break;
                }
            }
        }
        seed += 1;
        if show {
            bar.set_position(match args.time {
                Some(t) => u64::try_from(start.elapsed().min(t).as_millis()).unwrap_or(u64::MAX),
                None => seed - range.start,
            });
            bar.set_message(format!(
                "seeds {seeds} ops {} crashes {} failures {failures}",
                total.ops, total.crashes_recovered
            ));
        }
    }
    bar.finish();
    print_summary(&total, seeds, failures, start.elapsed());
    #[cfg(shuttle)]
    threaded.print();
    #[cfg(not(shuttle))]
    println!("threaded seeds:     not run (build with RUSTFLAGS=\"--cfg shuttle\" to run them)");
    if failures > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
