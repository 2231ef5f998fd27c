//! Faults from outside: `convert`, `create` and `extract` killed at moments spread over their
//! run, by SIGTERM (which dimg turns into a cancel) and by SIGKILL (which nothing can catch).
//! Either way no output appears, the source is unchanged, and a SIGKILL's only trace — the
//! hidden folder an extraction was building — is gone after the next job beside it.
//! (A source failing with EIO is in mount.rs, a full target in udif_write.rs.)

mod common;
use common::*;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Text-like bytes: compressible, so the codecs have work to do.
fn words(n: usize, seed: u64) -> Vec<u8> {
    noise(n, seed)
        .iter()
        .map(|b| b"abcdefgh \n"[usize::from(*b % 10)])
        .collect()
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Starts `dimg ARGS`, sends `signal` after `delay`, and gives its exit code: None when the
/// signal ended it, Some(code) when it exited (0 if it finished first, 130 when cancelled).
fn interrupted(args: &[&str], signal: &str, delay: Duration) -> Option<i32> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dimg"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status();
    child.wait().unwrap().code()
}

/// The output `target` of `job` is whole: an image that verifies, or the extracted tree.
fn assert_complete(job: &str, target: &Path, src: &Path, at: &str) {
    match job {
        "extract" => assert_same(&snapshot(target, false), &snapshot(src, false), at),
        _ => {
            let o = dimg(&["verify", s(target)]);
            assert!(o.status.success(), "{at}: the output left: {}", stderr(&o));
        }
    }
}

#[test]
fn killed_jobs_leave_no_output_and_the_source_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("inner")).unwrap();
    fs::write(src.join("big.txt"), words(48 << 20, 3)).unwrap();
    fs::write(src.join("inner/small.txt"), b"small\n").unwrap();
    let image = dir.path().join("source.dmg");
    create_hfs_image(&src, "UDZO", &image);
    let (folder_before, image_before) = (snapshot(&src, true), dimg_e2e::sha256sum(&image));
    let out = dir.path().join("out");
    fs::create_dir(&out).unwrap();
    let target = out.join("result");
    let jobs: [(&str, Vec<&str>); 3] = [
        (
            "convert",
            vec!["convert", s(&image), "-format", "UDZO", "-o", s(&target)],
        ),
        (
            "create",
            vec![
                "create",
                "-srcfolder",
                s(&src),
                "-fs",
                "HFS+",
                "-format",
                "UDBZ",
                s(&target),
            ],
        ),
        ("extract", vec!["extract", s(&image), "-o", s(&target)]),
    ];
    let (mut interrupted_runs, mut cancels) = (0, 0);
    for (job, args) in &jobs {
        // Moments spread over the job's own run, timed uninterrupted first.
        let started = std::time::Instant::now();
        assert!(dimg(args).status.success(), "{job}");
        let whole = started.elapsed();
        let _ = fs::remove_dir_all(&target).or_else(|_| fs::remove_file(&target));
        for signal in ["TERM", "KILL"] {
            for share in [0.05, 0.2, 0.4, 0.6, 0.85] {
                let delay = whole.mul_f64(share);
                let code = interrupted(args, signal, delay);
                let at = format!("{job}, SIG{signal} after {delay:?} of {whole:?}");
                if code == Some(0) {
                    // Finished first: the whole output is there; start the next case afresh.
                    assert_eq!(names(&out), ["result"], "{at}");
                    let _ = fs::remove_dir_all(&target).or_else(|_| fs::remove_file(&target));
                    continue;
                }
                interrupted_runs += 1;
                match signal {
                    // A SIGTERM before dimg has set up its handler ends it the default way.
                    "TERM" => {
                        assert!(matches!(code, Some(130) | None), "{at}: {code:?}");
                        cancels += usize::from(code == Some(130));
                    }
                    _ => assert_eq!(code, None, "{at}: killed"),
                }
                let left = names(&out);
                // A kill that lands after the output's atomic rename, as the process ends,
                // leaves the whole output: the one thing besides nothing that may be there.
                if left.iter().any(|n| n == "result") {
                    assert_complete(job, &target, &src, &at);
                    let _ = fs::remove_dir_all(&target).or_else(|_| fs::remove_file(&target));
                }
                let traces: Vec<&String> = left
                    .iter()
                    .filter(|n| *n != "result" || code.is_some())
                    .filter(|n| !(signal == "KILL" && *job == "extract" && n.ends_with(".partial")))
                    .collect();
                assert!(traces.is_empty(), "{at}: left {left:?}");
                assert_eq!(dimg_e2e::sha256sum(&image), image_before, "{at}: the image");
                assert_same(&snapshot(&src, true), &folder_before, &at);
            }
        }
    }
    assert!(
        interrupted_runs >= 20 && cancels >= 8,
        "only {interrupted_runs} runs were interrupted, {cancels} of them cancelled"
    );
    // The hidden folders of killed extractions go with the next job in the same place.
    let o = dimg(&["extract", s(&image), "-o", s(&target)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(names(&out), ["result"]);
    assert_complete("extract", &target, &src, "extracted");
}
