//! The damage sweep at scale: `COUNT` damaged copies of every corpus image file (default 120,
//! over 5,000 cases), each through info, verify, ls -R, convert and extract (tests/sweep).
//! Run: cargo bench -p dimg-cli --bench damage [-- COUNT]

mod common;
#[path = "../tests/sweep/mod.rs"]
mod sweep;

use std::time::Instant;

fn main() {
    let count = common::number_arg(120) as usize;
    let work = common::bench_dir().join("damage");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let start = Instant::now();
    let outcome = sweep::sweep(env!("CARGO_BIN_EXE_dimg").as_ref(), &work, count);
    println!(
        "{} damaged images, {} runs of dimg in {:.0} s: {} failures",
        outcome.cases,
        outcome.runs,
        start.elapsed().as_secs_f64(),
        outcome.failures.len()
    );
    for f in &outcome.failures {
        println!("  {f}");
    }
    assert!(outcome.failures.is_empty());
}
