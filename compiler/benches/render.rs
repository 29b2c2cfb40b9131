//! Render time per committed environment: load → resolve → build → validate → emit (into memory,
//! as `ehs render --check` does), repeated, with the median and 95th percentile in milliseconds.
//!
//! The first run of a process also compiles every kind's schema validator (cached afterwards),
//! so it is printed on its own: it is what one `ehs render` invocation pays once.

use std::error::Error;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use ehs_compiler::{environment_names, render_in_memory};

/// Runs per environment after the first; enough for a stable 95th percentile.
const RUNS: usize = 100;

fn main() -> Result<(), Box<dyn Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let names = environment_names(&root)?;

    let start = Instant::now();
    for name in &names {
        render_in_memory(&root, name)?;
    }
    println!(
        "first run, all {} environments (includes compiling the schema validators): {}",
        names.len(),
        millis(start.elapsed())
    );

    println!(
        "{:<12} {:>10} {:>10}   ({RUNS} runs each)",
        "environment", "median", "p95"
    );
    for name in &names {
        let mut times = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let start = Instant::now();
            black_box(render_in_memory(&root, name)?);
            times.push(start.elapsed());
        }
        times.sort();
        let median = times[RUNS / 2];
        let p95 = times[(RUNS * 95).div_ceil(100) - 1];
        println!("{name:<12} {:>10} {:>10}", millis(median), millis(p95));
    }
    Ok(())
}

fn millis(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}
