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

use args::{Cli, Command, PassArgs};
use dimg::Passphrase;
use output::Output;
use std::io::{IsTerminal, Read};
use std::path::Path;

fn main() -> ExitCode {
    let cli = Cli::parse_from(args::hdiutil_style(std::env::args_os()));
    let cancel = Cancel::new();
    let on_interrupt = cancel.clone();
    // If the handler cannot be installed, Ctrl-C simply ends the process the default way.
    let _ = ctrlc::set_handler(move || on_interrupt.cancel());
    match run(cli, &cancel) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Engine(Error::Cancelled)) => {
            eprintln!("dimg: cancelled");
            ExitCode::from(130)
        }
        Err(Failure::Engine(e)) => {
            eprintln!("dimg: {e}");
            ExitCode::FAILURE
        }
        Err(Failure::Checks(message)) => {
            eprintln!("dimg: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Why a command did not succeed.
enum Failure {
    Engine(Error),
    /// The job ran, and what it found is bad (a verify with failed checks).
    Checks(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Engine(e)
    }
}

/// Runs `job` with the passphrase the user gave: all of standard input with `-stdinpass`, or,
/// when the image turns out to be encrypted, typed at a hidden prompt on a terminal.
fn unlocked<T>(
    image: &Path,
    pass: PassArgs,
    job: impl Fn(Option<&Passphrase>) -> dimg::Result<T>,
) -> dimg::Result<T> {
    if pass.stdinpass {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(Path::new("standard input"), e))?;
        return job(Some(&Passphrase::from_stdin(bytes)));
    }
    match job(None) {
        Err(Error::PassphraseNeeded { .. }) if std::io::stdin().is_terminal() => {
            let name = image
                .file_name()
                .unwrap_or(image.as_os_str())
                .to_string_lossy();
            let typed =
                rpassword::prompt_password(format!("Enter password to access \"{name}\": "))
                    .map_err(|e| Error::io(Path::new("terminal"), e))?;
            job(Some(&Passphrase::new(typed.into_bytes())))
        }
        other => other,
    }
}

fn run(cli: Cli, cancel: &Cancel) -> Result<(), Failure> {
    match cli.command {
        Command::Info {
            image,
            pass,
            output,
        } => {
            let info = unlocked(&image, pass, |p| ops::info(&image, p))?;
            Output::from(output).print(&info, output::info_text);
        }
        Command::Verify {
            image,
            pass,
            output,
        } => {
            let bar = progress::Bar::new();
            let report = unlocked(&image, pass, |p| ops::verify(&image, p, &bar, cancel));
            bar.finish();
            let report = report?;
            Output::from(output).print(&report, output::verify_text);
            if !report.ok {
                let failed: Vec<&str> = report
                    .checks
                    .iter()
                    .filter(|c| !c.ok)
                    .map(|c| c.name.as_str())
                    .collect();
                return Err(Failure::Checks(format!(
                    "{}: checksum mismatch: {}",
                    image.display(),
                    failed.join(", ")
                )));
            }
        }
        Command::Convert {
            image,
            format,
            imagekey,
            output,
            ov,
            pass,
            print,
        } => {
            let mut options = ops::ConvertOptions::new(format);
            options.overwrite = ov;
            for key in imagekey {
                match key {
                    args::ImageKey::ZlibLevel(n) => options.zlib_level = Some(n),
                }
            }
            let bar = progress::Bar::new();
            let report = unlocked(&image, pass, |p| {
                ops::convert(&image, p, &output, &options, &bar, cancel)
            });
            bar.finish();
            Output::from(print).print(&report?, output::convert_text);
        }
    }
    Ok(())
}
