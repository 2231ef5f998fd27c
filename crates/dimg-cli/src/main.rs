//! `dimg`: hdiutil-style verbs over the engine's operations. This is the only place (with the app)
//! that talks to people: it parses arguments, draws progress, prints results and maps errors to
//! exit codes.

mod args;
mod output;
mod progress;

use clap::Parser;
use dimg::ops::{self, Cancel};
use dimg::Error;
use std::process::ExitCode;

use args::{Cli, Command};
use output::Output;

fn main() -> ExitCode {
    let cli = Cli::parse_from(args::hdiutil_style(std::env::args_os()));
    let cancel = Cancel::new();
    let on_interrupt = cancel.clone();
    // If the handler cannot be installed, Ctrl-C simply ends the process the default way.
    let _ = ctrlc::set_handler(move || on_interrupt.cancel());
    match run(cli, &cancel) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::Cancelled) => {
            eprintln!("dimg: cancelled");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("dimg: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli, cancel: &Cancel) -> dimg::Result<()> {
    match cli.command {
        Command::Info { image, output } => {
            let info = ops::info(&image)?;
            Output::from(output).print(&info, output::info_text);
        }
        Command::Verify { image, output } => {
            let bar = progress::Bar::new();
            let report = ops::verify(&image, &bar, cancel);
            bar.finish();
            Output::from(output).print(&report?, output::verify_text);
        }
    }
    Ok(())
}
