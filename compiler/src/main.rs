//! `ehs`: compiles EHS environments into deterministic Kubernetes manifests.

use std::process::ExitCode;

use clap::Parser;
use ehs_compiler::cli;

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
