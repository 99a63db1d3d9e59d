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

use sedimentdb_sim::runner::{run_seed, RunSummary};
use sedimentdb_sim::shrink::{regression_test, shrink};
use sedimentdb_sim::workload::{generate, Knobs};
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

struct Args {
    seeds: std::ops::Range<u64>,
    time: Option<Duration>,
    shrink: bool,
    plant: Option<String>,
    quiet: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: sedimentdb-sim [--seed N | --seeds A..B | --time 30s|10m|1h] [--shrink] [--plant BUG] [--quiet]"
    );
    std::process::exit(2)
}

fn parse_duration(s: &str) -> Option<Duration> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = n.parse().ok()?;
    Some(Duration::from_secs(match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return None,
    }))
}

fn parse() -> Args {
    let mut a = Args {
        seeds: 0..1,
        time: None,
        shrink: false,
        plant: None,
        quiet: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seed" => {
                let s: u64 = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| usage());
                a.seeds = s..s + 1;
            }
            "--seeds" => {
                let r = it.next().unwrap_or_else(|| usage());
                let (x, y) = r.split_once("..").unwrap_or_else(|| usage());
                a.seeds =
                    x.parse().unwrap_or_else(|_| usage())..y.parse().unwrap_or_else(|_| usage());
            }
            "--time" => {
                a.time = Some(
                    it.next()
                        .and_then(|s| parse_duration(&s))
                        .unwrap_or_else(|| usage()),
                )
            }
            "--shrink" => a.shrink = true,
            "--plant" => a.plant = Some(it.next().unwrap_or_else(|| usage())),
            "--quiet" => a.quiet = true,
            _ => usage(),
        }
    }
    a
}

#[cfg(feature = "planted-bugs")]
fn plant(name: &Option<String>) {
    if let Some(n) = name {
        let bug = sedimentdb_sim::Bug::ALL
            .into_iter()
            .find(|b| format!("{b:?}") == *n)
            .unwrap_or_else(|| {
                eprintln!("unknown bug {n}; known: {:?}", sedimentdb_sim::Bug::ALL);
                std::process::exit(2)
            });
        sedimentdb::internals::planted::plant(Some(bug));
    }
}

#[cfg(not(feature = "planted-bugs"))]
fn plant(name: &Option<String>) {
    if name.is_some() {
        eprintln!(
            "--plant needs: cargo run --release -p sedimentdb-sim --features planted-bugs -- ..."
        );
        std::process::exit(2)
    }
}

fn progress_bar(done: f64) -> String {
    let n = (done * 30.0) as usize;
    format!(
        "[{}{}] {:>3.0}%",
        "#".repeat(n),
        ".".repeat(30 - n),
        done * 100.0
    )
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
    let args = parse();
    plant(&args.plant);
    let start = Instant::now();
    let mut total = RunSummary::default();
    let (mut seeds, mut failures) = (0u64, 0u64);
    let mut seed = args.seeds.start;
    let mut last_progress = Instant::now();
    #[cfg(shuttle)]
    let mut threaded = Threaded::default();
    loop {
        match args.time {
            Some(t) if start.elapsed() >= t => break,
            None if seed >= args.seeds.end => break,
            _ => {}
        }
        seeds += 1;
        #[cfg(shuttle)]
        if let Err(f) = threaded.run(seed) {
            failures += 1;
            eprintln!("\n{f}");
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
                if args.time.is_none() && args.seeds.end - args.seeds.start == 1 {
                    break;
                }
            }
        }
        seed += 1;
        if !args.quiet && last_progress.elapsed() >= Duration::from_millis(500) {
            last_progress = Instant::now();
            let done = match args.time {
                Some(t) => start.elapsed().as_secs_f64() / t.as_secs_f64(),
                None => {
                    let span = (args.seeds.end - args.seeds.start).max(1) as f64;
                    (seed - args.seeds.start) as f64 / span
                }
            };
            let bar = progress_bar(done.min(1.0));
            eprint!(
                "\r{bar} seeds {seeds} ops {} crashes {} failures {failures}   ",
                total.ops, total.crashes_recovered
            );
            let _ = std::io::stderr().flush();
        }
    }
    if !args.quiet {
        eprintln!();
    }
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
