//! What every CLI test does: run the built `dimg` and read what it said.
// Each test file uses its own subset of these.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

pub fn dimg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dimg"))
        .args(args)
        .output()
        .expect("dimg runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}
