//! One environment through the whole pipeline: load → resolve → build → validate → emit.

use crate::components::{self, ComponentError};
use crate::emit::{self, EmitError, Files};
use crate::load::{Defaults, LoadError, Repo};
use crate::resolve::{self, Platform, ResolveError};
use crate::templates::Templates;
use crate::validate::{self, Finding};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Component(#[from] ComponentError),
    #[error(transparent)]
    Emit(#[from] EmitError),
}

/// Inputs shared by every environment, read once.
pub struct Shared {
    pub defaults: Defaults,
    pub templates: Templates,
}

impl Shared {
    pub fn load(repo: &Repo) -> Result<Shared, LoadError> {
        Ok(Shared {
            defaults: repo.defaults()?,
            templates: repo.templates()?,
        })
    }
}

/// An environment compiled in memory; nothing is written yet.
pub struct Compiled {
    pub name: String,
    pub platform: Platform,
    pub findings: Vec<Finding>,
    pub files: Files,
}

pub fn compile(repo: &Repo, shared: &Shared, name: &str) -> Result<Compiled, PipelineError> {
    let file = repo.environment(name)?;
    let platform = resolve::resolve(&file, &shared.defaults)?;
    let objects = components::build_all(&platform, &shared.templates)?;
    let findings = validate::validate(&objects, &platform);
    let files = emit::render_files(&file.path, &objects)?;
    Ok(Compiled {
        name: name.to_owned(),
        platform,
        findings,
        files,
    })
}
