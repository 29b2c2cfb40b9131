//! The EHS compiler: environments (`environments/*.yaml` + `components/`) into deterministic
//! Kubernetes manifests. The `ehs` binary is its command line ([`cli`]); [`environment_names`]
//! and [`render_in_memory`] let the render benchmark (`benches/render.rs`) run the pipeline
//! without a process per run.
//!
//! Everything else stays private to the crate, so the compiler's dead-code lints still see
//! every unused item.

pub mod cli;
mod components;
mod diff;
mod emit;
mod graph;
mod load;
mod manifest;
mod model;
mod pipeline;
mod promote;
mod quantity;
mod resolve;
mod templates;
mod upstream;
mod validate;

use std::path::Path;

use load::Repo;
use pipeline::{PipelineError, Shared};

/// The environments of the repository at or above `root`, as `ehs render` would render them.
pub fn environment_names(root: &Path) -> Result<Vec<String>, String> {
    let repo = Repo::discover(root).map_err(|error| error.to_string())?;
    let listing = repo.environments().map_err(|error| error.to_string())?;
    Ok(listing.names)
}

/// One environment through the whole pipeline, load → resolve → build → validate → emit, reading
/// its inputs from disk as `ehs render` does and keeping the files in memory. Returns how many
/// files it would write; a finding (or any error) is an error.
pub fn render_in_memory(root: &Path, name: &str) -> Result<usize, String> {
    let run = || -> Result<Result<usize, String>, PipelineError> {
        let repo = Repo::discover(root)?;
        let shared = Shared::load(&repo)?;
        let compiled = pipeline::compile(&repo, &shared, name)?;
        Ok(match compiled.findings.first() {
            Some(finding) => Err(format!("{name} does not validate: {finding}")),
            None => Ok(compiled.files.len()),
        })
    };
    run().map_err(|error| format!("{:#}", anyhow::Error::from(error)))?
}
