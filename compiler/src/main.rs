//! `ehs`: compiles EHS environments into deterministic Kubernetes manifests.

mod cli;
mod components;
mod diff;
mod emit;
mod load;
mod manifest;
mod model;
mod pipeline;
mod quantity;
mod resolve;
mod templates;
mod validate;

use std::process::ExitCode;

use clap::Parser;

/// Exit code for errors: bad input, unreadable or unwritable files.
const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli).map_err(anyhow::Error::from) {
        Ok(code) => code,
        Err(error) => {
            cli::note(format_args!("error: {error:#}"));
            ExitCode::from(EXIT_ERROR)
        }
    }
}
