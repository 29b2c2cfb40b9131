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

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            cli::report_error(error);
            ExitCode::from(cli::EXIT_ERROR)
        }
    }
}
