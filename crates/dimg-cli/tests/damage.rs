//! Damaged copies of every corpus image: never a panic, a hang, an exit outside 0-2, or a file
//! left behind (tests/sweep; `cargo bench --bench damage` runs thousands of cases).

mod sweep;

#[test]
fn damaged_corpus_images_end_cleanly() {
    let work = tempfile::tempdir().unwrap();
    let outcome = sweep::sweep(env!("CARGO_BIN_EXE_dimg").as_ref(), work.path(), 8);
    assert!(outcome.cases >= 300, "only {} cases", outcome.cases);
    assert!(
        outcome.failures.is_empty(),
        "{} of {} runs failed:\n{}",
        outcome.failures.len(),
        outcome.runs,
        outcome.failures.join("\n")
    );
}
