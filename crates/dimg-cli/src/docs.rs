//! What the package installs beside the binary, made from the CLI's own definitions so they
//! never drift from it: man pages (dimg(1), and dimg-VERB(1) for each verb) and the shells'
//! completion scripts.

use crate::args::{Cli, Generated};
use clap::CommandFactory;
use clap_complete::Shell;
use std::io::{self, Write};
use std::path::Path;

/// `dimg generate WHAT [DIR]`.
pub fn generate(what: Generated, dir: Option<&Path>) -> io::Result<()> {
    let mut cli = Cli::command();
    let shell = match what {
        Generated::Man => {
            let dir = dir.ok_or_else(|| io::Error::other("name the folder for the man pages"))?;
            return man_pages(cli, dir);
        }
        Generated::CompleteBash => Shell::Bash,
        Generated::CompleteZsh => Shell::Zsh,
        Generated::CompleteFish => Shell::Fish,
    };
    let mut out = io::stdout().lock();
    clap_complete::generate(shell, &mut cli, "dimg", &mut out);
    out.flush()
}

/// dimg.1, then dimg-VERB.1 for every verb a user may type (not the hidden ones).
fn man_pages(mut cli: clap::Command, dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    cli.build();
    // clap's own `help` verb is the `--help` every page already describes.
    for verb in cli
        .get_subcommands()
        .filter(|v| !v.is_hide_set() && v.get_name() != "help")
    {
        let name = format!("dimg-{}", verb.get_name());
        let page = verb
            .clone()
            .display_name(name.clone())
            .bin_name(format!("dimg {}", verb.get_name()));
        write_page(page, &dir.join(format!("{name}.1")))?;
    }
    write_page(cli, &dir.join("dimg.1"))
}

fn write_page(command: clap::Command, to: &Path) -> io::Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command).render(&mut page)?;
    std::fs::write(to, page)
}
