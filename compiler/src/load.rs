//! Reads the repository's inputs: environment files, component defaults and templates.
//!
//! YAML errors keep the file, line and column they came from, so every mistake in an input file
//! is reported where it is.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::components;
use crate::model::{check_dns_label, Environment};
use crate::templates::{TemplateError, Templates};
use crate::upstream::{Upstream, UPSTREAM_FILE};

pub const ENVIRONMENTS_DIR: &str = "environments";
pub const COMPONENTS_DIR: &str = "components";
pub const RENDERED_DIR: &str = "rendered";
const DEFAULTS_FILE: &str = "defaults.yaml";
const TEMPLATE_EXTENSION: &str = "j2";

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("no `{ENVIRONMENTS_DIR}/` directory in {start} or any parent; run inside the repository or pass --root")]
    RootNotFound { start: PathBuf },
    #[error("{path}: cannot read")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}{snippet}")]
    Yaml {
        path: String,
        line: u64,
        column: u64,
        message: String,
        snippet: String,
    },
    #[error(
        "{path}: {reason}; an environment file is named `<name>.yaml` where <name> is a DNS \
         label, because the name becomes the directory `rendered/<name>/` (e.g. `prod.yaml`)"
    )]
    EnvironmentFileName { path: String, reason: String },
    #[error("no environment `{name}`; available: {available}")]
    UnknownEnvironment { name: String, available: String },
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("{UPSTREAM_FILE}: {message}")]
    Upstream { message: String },
}

/// The repository checkout the compiler works in.
#[derive(Debug, Clone)]
pub struct Repo {
    pub root: PathBuf,
}

/// Defines [`Defaults`] and [`Repo::defaults`] with one field per registered component.
macro_rules! define_defaults {
    ($($component:ident => $key:ident),* $(,)?) => {
        /// Every component's defaults, as written in `components/<name>/defaults.yaml`.
        #[derive(Debug, Clone)]
        pub struct Defaults {
            $(pub $component: components::$component::Layer,)*
            /// `components/upstream.yaml`: the pins the GitOps definitions install operators at.
            pub upstream: Upstream,
        }

        impl Repo {
            /// Every `components/<name>/defaults.yaml`, with its images from
            /// `components/upstream.yaml`.
            pub fn defaults(&self) -> Result<Defaults, LoadError> {
                let upstream = self.upstream()?;
                let names = [$(components::$component::NAME),*];
                if let Some(key) = upstream.unknown_components(&names).first() {
                    return Err(LoadError::Upstream {
                        message: format!(
                            "images.`{key}`: not `<component>.<setting>` of a component ({})",
                            names.join(", ")
                        ),
                    });
                }
                Ok(Defaults {
                    $($component: self.defaults_of(components::$component::NAME, &upstream)?,)*
                    upstream,
                })
            }
        }
    };
}
components::for_each_component!(define_defaults);

/// An environment file, parsed.
#[derive(Debug, Clone)]
pub struct EnvironmentFile {
    /// File stem, e.g. `prod`.
    pub name: String,
    /// Path relative to the repository root, for messages.
    pub path: String,
    pub environment: Environment,
}

/// The environment files found in `environments/`.
#[derive(Debug, Default)]
pub struct EnvironmentListing {
    /// Stems of the valid file names, sorted.
    pub names: Vec<String>,
    /// One error per `*.yaml` file whose name is not a valid environment name.
    pub invalid: Vec<LoadError>,
}

impl Repo {
    /// The nearest directory at or above `start` that holds `environments/`.
    pub fn discover(start: &Path) -> Result<Repo, LoadError> {
        start
            .ancestors()
            .find(|dir| dir.join(ENVIRONMENTS_DIR).is_dir())
            .map(|root| Repo {
                root: root.to_path_buf(),
            })
            .ok_or_else(|| LoadError::RootNotFound {
                start: start.to_path_buf(),
            })
    }

    pub fn rendered_dir(&self) -> PathBuf {
        self.root.join(RENDERED_DIR)
    }

    /// Every `environments/*.yaml`, sorted, with the names that cannot be environments apart.
    pub fn environments(&self) -> Result<EnvironmentListing, LoadError> {
        let dir = self.root.join(ENVIRONMENTS_DIR);
        let read_error = |source| LoadError::Read {
            path: ENVIRONMENTS_DIR.to_owned(),
            source,
        };
        let mut listing = EnvironmentListing::default();
        for entry in fs::read_dir(&dir).map_err(read_error)? {
            let path = entry.map_err(read_error)?.path();
            if path.extension().is_none_or(|ext| ext != "yaml") {
                continue;
            }
            let stem = path.file_stem().map(|stem| stem.to_string_lossy());
            let stem = stem.as_deref().unwrap_or_default();
            match check_environment_name(stem) {
                Ok(()) => listing.names.push(stem.to_owned()),
                Err(error) => listing.invalid.push(error),
            }
        }
        listing.names.sort();
        listing.invalid.sort_by_cached_key(ToString::to_string);
        Ok(listing)
    }

    /// Names of the valid environments (`environments/*.yaml`), sorted.
    pub fn environment_names(&self) -> Result<Vec<String>, LoadError> {
        Ok(self.environments()?.names)
    }

    pub fn environment(&self, name: &str) -> Result<EnvironmentFile, LoadError> {
        check_environment_name(name)?;
        let available = self.environment_names()?;
        if !available.iter().any(|known| known == name) {
            return Err(LoadError::UnknownEnvironment {
                name: name.to_owned(),
                available: available.join(", "),
            });
        }
        let path = format!("{ENVIRONMENTS_DIR}/{name}.yaml");
        let environment = self.parse(&path)?;
        Ok(EnvironmentFile {
            name: name.to_owned(),
            path,
            environment,
        })
    }

    /// Line and column of an environment file's `namespace` value, which the typed model does
    /// not keep: a second, lenient read of the file, for messages about the namespace.
    pub fn namespace_position(&self, file: &EnvironmentFile) -> Result<(u64, u64), LoadError> {
        let located: NamespaceLocation = self.parse(&file.path)?;
        let location = located.namespace.referenced;
        Ok((location.line(), location.column()))
    }

    /// Every `components/<component>/*.j2`, named `<component>/<file>`.
    pub fn templates(&self) -> Result<Templates, LoadError> {
        let mut sources = BTreeMap::new();
        for component in components::ALL.iter().map(|component| component.name) {
            let dir = self.root.join(COMPONENTS_DIR).join(component);
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path
                    .extension()
                    .is_some_and(|ext| ext == TEMPLATE_EXTENSION)
                {
                    let file = entry.file_name().to_string_lossy().into_owned();
                    let relative = format!("{COMPONENTS_DIR}/{component}/{file}");
                    sources.insert(format!("{component}/{file}"), self.read(&relative)?);
                }
            }
        }
        Ok(Templates::new(sources)?)
    }

    /// Every input file an environment is rendered from, `(path, text)` sorted by path: the
    /// environment file, `components/upstream.yaml`, and each component's defaults and templates.
    pub fn inputs(&self, environment: &str) -> Result<Vec<(String, String)>, LoadError> {
        let mut paths = vec![
            format!("{ENVIRONMENTS_DIR}/{environment}.yaml"),
            UPSTREAM_FILE.to_owned(),
        ];
        for component in components::ALL.iter().map(|component| component.name) {
            paths.push(defaults_path(component));
            let dir = self.root.join(COMPONENTS_DIR).join(component);
            for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
                let file = entry.file_name().to_string_lossy().into_owned();
                if file.ends_with(&format!(".{TEMPLATE_EXTENSION}")) {
                    paths.push(format!("{COMPONENTS_DIR}/{component}/{file}"));
                }
            }
        }
        paths.sort();
        paths
            .into_iter()
            .map(|path| Ok((path.clone(), self.read(&path)?)))
            .collect()
    }

    fn read(&self, relative: &str) -> Result<String, LoadError> {
        fs::read_to_string(self.root.join(relative)).map_err(|source| LoadError::Read {
            path: relative.to_owned(),
            source,
        })
    }

    pub fn upstream(&self) -> Result<Upstream, LoadError> {
        let upstream: Upstream = self.parse(UPSTREAM_FILE)?;
        upstream
            .check()
            .map_err(|message| LoadError::Upstream { message })?;
        Ok(upstream)
    }

    /// A component's defaults file with its upstream images filled in.
    fn defaults_of<T>(&self, component: &str, upstream: &Upstream) -> Result<T, LoadError>
    where
        T: DeserializeOwned + Serialize + JsonSchema,
    {
        let layer: T = self.parse(&defaults_path(component))?;
        let failed = |message: String| LoadError::Upstream { message };
        let mut value = serde_json::to_value(&layer).map_err(|error| failed(error.to_string()))?;
        let schema = serde_json::to_value(schemars::schema_for!(T))
            .map_err(|error| failed(error.to_string()))?;
        let known: Vec<&str> = schema["properties"]
            .as_object()
            .map(|properties| properties.keys().map(String::as_str).collect())
            .unwrap_or_default();
        upstream
            .fill_defaults(component, &mut value, &known)
            .map_err(failed)?;
        serde_json::from_value(value).map_err(|error| failed(error.to_string()))
    }

    fn parse<T: DeserializeOwned>(&self, relative: &str) -> Result<T, LoadError> {
        parse_yaml(relative, &self.read(relative)?)
    }
}

#[derive(serde::Deserialize)]
struct NamespaceLocation {
    namespace: serde_saphyr::Spanned<serde::de::IgnoredAny>,
}

/// An environment's name becomes a directory under `rendered/` and part of every rendered file's
/// header comment, so it must be a DNS label: no path separators, dots, white space or line breaks.
fn check_environment_name(name: &str) -> Result<(), LoadError> {
    // Escaping turns only characters a DNS label never holds into others it never holds, so the
    // escaped name is valid exactly when the name is, and the message stays on one line.
    let printable = name.escape_debug().to_string();
    check_dns_label(&printable).map_err(|reason| LoadError::EnvironmentFileName {
        path: format!("{ENVIRONMENTS_DIR}/{printable}.yaml"),
        reason,
    })
}

pub fn defaults_path(component: &str) -> String {
    format!("{COMPONENTS_DIR}/{component}/{DEFAULTS_FILE}")
}

/// Parses YAML text; errors carry `path:line:column` and a snippet of the offending line.
pub fn parse_yaml<T: DeserializeOwned>(path: &str, text: &str) -> Result<T, LoadError> {
    serde_saphyr::from_str(text).map_err(|error| {
        let (line, column) = error
            .location()
            .map_or((0, 0), |location| (location.line(), location.column()));
        let plain = error.render_with_options(serde_saphyr::render_options! {
            source_name: Some(path),
            snippets: serde_saphyr::SnippetMode::Off,
        });
        // The plain rendering ends with " at line L, column C", which our prefix already says.
        let message = plain
            .rsplit_once(" at line ")
            .map_or(plain.as_str(), |(message, _)| message);
        LoadError::Yaml {
            path: path.to_owned(),
            line,
            column,
            message: with_hint(message),
            snippet: snippet(text, line, column),
        }
    })
}

/// The lines around `line`, numbered, with a caret under `column`, on lines of their own after
/// the message. The message and its position are not repeated: the first line already says them.
fn snippet(text: &str, line: u64, column: u64) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let (Ok(line), Ok(column)) = (usize::try_from(line), usize::try_from(column)) else {
        return String::new();
    };
    if line == 0 || line > lines.len() {
        return String::new();
    }
    let first = line.saturating_sub(2).max(1);
    let last = (line + 2).min(lines.len());
    let width = last.to_string().len();
    let mut out = String::new();
    for number in first..=last {
        let source = format!("{number:>width$} | {}", lines[number - 1]);
        out.push('\n');
        out.push_str(source.trim_end());
        if number == line {
            let pad = " ".repeat(column.saturating_sub(1));
            out.push_str(&format!("\n{:width$} | {pad}^", ""));
        }
    }
    out
}

/// The YAML reader's terse type errors, completed with what would be valid.
fn with_hint(message: &str) -> String {
    if let Some(key) = message.strip_prefix("duplicate mapping key: ") {
        let key = key.split(',').next().unwrap_or(key);
        return format!("duplicate key `{key}`: each key may appear only once in a mapping");
    }
    if message == "unexpected end of input" {
        return "unexpected end of input: the file is empty or ends mid-value".to_owned();
    }
    let hint = match message {
        "invalid boolean" => Some("use `true` or `false`"),
        "expected string scalar" => Some("expected a single text value, not a list or a map"),
        "invalid u16" => Some("use a whole number from 0 to 65535"),
        "invalid u32" | "invalid u64" => Some("use a whole number of 0 or more"),
        "invalid i32" | "invalid i64" => Some("use a whole number"),
        _ => None,
    };
    match hint {
        Some(hint) => format!("{message}: {hint}"),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        parse_yaml::<Environment>("environments/x.yaml", text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn messages_start_with_file_line_and_column_and_say_what_is_valid() {
        let duplicate = error("namespace: a\nnamespace: b\ndomain: x.y\n");
        assert!(
            duplicate.starts_with(
                "environments/x.yaml:2:1: duplicate key `namespace`: each key may appear only once"
            ),
            "{duplicate}"
        );
        let boolean = error("namespace: a\ndomain: x.y\nproduction: maybe\n");
        assert!(
            boolean.starts_with("environments/x.yaml:3:13: invalid boolean: use `true` or `false`"),
            "{boolean}"
        );
        // The snippet shows the offending line.
        assert!(boolean.contains("3 | production: maybe"), "{boolean}");
    }

    #[test]
    fn environment_names_are_dns_labels() {
        assert!(check_environment_name("prod").is_ok());
        for name in ["", ".", "..", "a\nb", "a/b", "Prod", "a b", "a.b", "-a"] {
            assert!(check_environment_name(name).is_err(), "{name:?}");
        }
        let message = check_environment_name("a\nb").unwrap_err().to_string();
        assert!(
            message.starts_with("environments/a\\nb.yaml: `a\\nb` is not a valid DNS label"),
            "{message}"
        );
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn repository_root_is_the_nearest_directory_with_environments() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let found = Repo::discover(&root.join("components/kafka")).unwrap();
        assert_eq!(found.root, root);
        assert!(Repo::discover(Path::new("/")).is_err());
    }
}
