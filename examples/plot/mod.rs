//! Shared by `examples/compaction_report.rs` and `examples/dbbench.rs` (each includes it with
//! `#[path = "plot/mod.rs"] mod plot;`): samples `Db::stats` while a benchmark writes, and draws
//! the samples as an SVG chart with plotters. Each run (benchmark) gets a row of two panels: the
//! bytes in each level (and in the active memtable), and the write rate with the intervals
//! holding a write stall marked.

use plotters::coord::Shift;
use plotters::prelude::*;
use sedimentdb::Db;
use std::error::Error;
use std::path::Path;
use std::time::Instant;

/// Samples per run at most, so the chart stays small whatever the number of writes.
const MAX_SAMPLES: u64 = 400;

/// One line colour per level (L0..L6), none of them the red that marks stalls.
const LEVEL_COLORS: [RGBColor; 7] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// The state at the end of one sample interval.
struct Sample {
    /// User bytes written since the run began.
    user_bytes: u64,
    /// Writes a second over the interval (0 for the first sample, which ends no interval).
    ops_per_sec: f64,
    /// Bytes in each level.
    level_bytes: Vec<u64>,
    /// Approximate bytes in the active memtable.
    memtable_bytes: u64,
    /// Write stalls counted during the interval.
    stalls: u64,
}

/// Samples one run: `Db::stats` every `ops / MAX_SAMPLES` writes, and the time between.
pub struct Sampler {
    title: String,
    bytes_per_op: u64,
    every: u64,
    last_time: Instant,
    last_ops: u64,
    first_stalls: u64,
    first_stall_ms: u64,
    last_stalls: u64,
    samples: Vec<Sample>,
}

/// The samples of one finished run.
pub struct Run {
    title: String,
    samples: Vec<Sample>,
    stalls: u64,
    stall_ms: u64,
}

impl Sampler {
    /// Starts sampling a run of `ops` writes of `bytes_per_op` user bytes each; create it just
    /// before the first write.
    pub fn new(title: impl Into<String>, db: &Db, ops: u64, bytes_per_op: u64) -> Sampler {
        let s = db.stats();
        Sampler {
            title: title.into(),
            bytes_per_op,
            every: ops.div_ceil(MAX_SAMPLES).max(1),
            last_ops: 0,
            first_stalls: s.write_stalls,
            first_stall_ms: s.write_stall_ms,
            last_stalls: s.write_stalls,
            samples: vec![Sample {
                user_bytes: 0,
                ops_per_sec: 0.0,
                level_bytes: s.levels.iter().map(|l| l.bytes).collect(),
                memtable_bytes: s.memtable_bytes as u64,
                stalls: 0,
            }],
            last_time: Instant::now(),
        }
    }

    /// Call after each write, with the writes done so far: samples every `every` writes.
    pub fn tick(&mut self, db: &Db, done: u64) {
        if done.is_multiple_of(self.every) {
            self.sample(db, done);
        }
    }

    fn sample(&mut self, db: &Db, done: u64) {
        let secs = self.last_time.elapsed().as_secs_f64().max(1e-9);
        let s = db.stats();
        self.samples.push(Sample {
            user_bytes: done * self.bytes_per_op,
            ops_per_sec: (done - self.last_ops) as f64 / secs,
            level_bytes: s.levels.iter().map(|l| l.bytes).collect(),
            memtable_bytes: s.memtable_bytes as u64,
            stalls: s.write_stalls - self.last_stalls,
        });
        self.last_ops = done;
        self.last_stalls = s.write_stalls;
        // Taken after `stats`, so the next interval times writes only.
        self.last_time = Instant::now();
    }

    /// Ends the run after `done` writes, sampling once more unless the last write did.
    pub fn finish(mut self, db: &Db, done: u64) -> Run {
        if done != self.last_ops {
            self.sample(db, done);
        }
        let s = db.stats();
        Run {
            title: self.title,
            samples: self.samples,
            stalls: s.write_stalls - self.first_stalls,
            stall_ms: s.write_stall_ms - self.first_stall_ms,
        }
    }
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// Draws `runs` into an SVG at `path`, one row of two panels each, under `caption`.
pub fn draw(path: &Path, caption: &str, runs: &[Run]) -> Result<(), Box<dyn Error>> {
    let rows = runs.len().max(1);
    let root = SVGBackend::new(path, (1280, 50 + 360 * rows as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(caption, ("sans-serif", 20))?;
    let panels = root.split_evenly((rows, 2));
    for (run, row) in runs.iter().zip(panels.chunks(2)) {
        levels_panel(&row[0], run)?;
        rate_panel(&row[1], run)?;
    }
    root.present()?;
    Ok(())
}

/// A tick label without trailing zeros: 20, 1.5, 0.0002.
fn tick(v: &f64) -> String {
    let s = format!("{v:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn x_max(run: &Run) -> f64 {
    run.samples
        .last()
        .map_or(0.0, |s| mb(s.user_bytes))
        .max(1e-3)
}

/// Bytes per level against user bytes written: one line per level that ever holds data, and a
/// grey one for the active memtable on an axis of its own (right), as it can dwarf the tables.
fn levels_panel(area: &Area, run: &Run) -> Result<(), Box<dyn Error>> {
    let levels: Vec<usize> = (0..LEVEL_COLORS.len())
        .filter(|&l| {
            run.samples
                .iter()
                .any(|s| s.level_bytes.get(l).is_some_and(|&b| b > 0))
        })
        .collect();
    // The largest value, with headroom for the legend in the upper left corner.
    let top =
        |bytes: &mut dyn Iterator<Item = u64>| bytes.map(mb).fold(0.0, f64::max).max(1e-3) * 1.3;
    let y_max = top(&mut run
        .samples
        .iter()
        .flat_map(|s| s.level_bytes.iter().copied()));
    let mem_max = top(&mut run.samples.iter().map(|s| s.memtable_bytes));
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{}: bytes per level", run.title),
            ("sans-serif", 16),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .right_y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max(run), 0.0..y_max)?
        .set_secondary_coord(0.0..x_max(run), 0.0..mem_max);
    chart
        .configure_mesh()
        .max_light_lines(2)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .x_desc("MB written by the user")
        .y_desc("MB in the level")
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_label_formatter(&tick)
        .y_desc("MB in the memtable")
        .draw()?;
    let grey = RGBColor(190, 190, 190);
    chart
        .draw_secondary_series(LineSeries::new(
            run.samples
                .iter()
                .map(|s| (mb(s.user_bytes), mb(s.memtable_bytes))),
            grey.stroke_width(1),
        ))?
        .label("memtable (right axis)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey.stroke_width(1)));
    for &l in &levels {
        let color = LEVEL_COLORS[l];
        chart
            .draw_series(LineSeries::new(
                run.samples.iter().map(|s| {
                    let bytes = s.level_bytes.get(l).copied().unwrap_or(0);
                    (mb(s.user_bytes), mb(bytes))
                }),
                color.stroke_width(2),
            ))?
            .label(format!("L{l}"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Writes a second per sample interval against user bytes written, with red points on the
/// intervals during which `Stats::write_stalls` grew.
fn rate_panel(area: &Area, run: &Run) -> Result<(), Box<dyn Error>> {
    let kops = |s: &Sample| s.ops_per_sec / 1e3;
    let rates = run.samples.get(1..).unwrap_or(&[]);
    // Headroom for the legend in the upper right corner.
    let y_max = rates.iter().map(kops).fold(0.0, f64::max).max(1e-3) * 1.3;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "{}: write rate ({} stalls, {} ms stalled)",
                run.title, run.stalls, run.stall_ms
            ),
            ("sans-serif", 16),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max(run), 0.0..y_max)?;
    chart
        .configure_mesh()
        .max_light_lines(2)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .x_desc("MB written by the user")
        .y_desc("thousand writes/s")
        .draw()?;
    let line = RGBColor(31, 119, 180);
    chart
        .draw_series(LineSeries::new(
            rates.iter().map(|s| (mb(s.user_bytes), kops(s))),
            line.stroke_width(1),
        ))?
        .label("writes/s over the sample interval")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], line.stroke_width(2)));
    let stalled: Vec<&Sample> = rates.iter().filter(|s| s.stalls > 0).collect();
    if !stalled.is_empty() {
        chart
            .draw_series(
                stalled
                    .iter()
                    .map(|s| Circle::new((mb(s.user_bytes), kops(s)), 3, RED.filled())),
            )?
            .label("interval with a write stall")
            .legend(|(x, y)| Circle::new((x + 10, y), 3, RED.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
