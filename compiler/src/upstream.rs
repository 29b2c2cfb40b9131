//! `components/upstream.yaml`: every upstream piece the platform relies on, with its version and
//! source, and the default image of every component setting that runs upstream software.
//!
//! Images live there rather than in each `components/<name>/defaults.yaml` so that one file holds
//! every upstream version (and Renovate bumps one file); [`Upstream::fill_defaults`] puts each
//! into its component's defaults before they are resolved, so the rest of the pipeline is
//! unchanged and environments still override images as before.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::model::Image;

pub const UPSTREAM_FILE: &str = "components/upstream.yaml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Upstream {
    /// What must be installed in the cluster before the platform, by name.
    pub prerequisites: BTreeMap<String, Prerequisite>,
    /// Default images, keyed `<component>.<setting>` (the setting as written in defaults files).
    pub images: BTreeMap<String, Image>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Prerequisite {
    /// What the platform needs it for.
    pub purpose: String,
    pub kind: PrerequisiteKind,
    /// The Helm chart, for `helm-chart`.
    pub chart: Option<String>,
    /// Where it is published: a Helm repository or a releases page.
    pub source: String,
    /// The exact version installed.
    pub version: String,
    /// For a `manifest` installed from its Git repository: where in the repository, at the tag
    /// `version`, its manifests are.
    pub git: Option<GitManifests>,
}

/// Manifests in an upstream Git repository, read at the tag of the prerequisite's version.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GitManifests {
    /// The repository, `https://…​.git`.
    pub repository: String,
    /// Directory of the manifests.
    pub path: String,
    /// Only the files of `path` matching this glob; `{version}` stands for the version without
    /// its leading `v` (e.g. `cnpg-{version}.yaml`). Unset: every file of `path`.
    pub include: Option<String>,
}

impl Prerequisite {
    /// `include` with the version filled in.
    pub fn git_include(&self) -> Option<String> {
        let include = self.git.as_ref()?.include.as_ref()?;
        let version = self.version.strip_prefix('v').unwrap_or(&self.version);
        Some(include.replace("{version}", version))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrerequisiteKind {
    HelmChart,
    Manifest,
}

impl Upstream {
    /// Each prerequisite says what it is for, where it comes from and which exact version: a
    /// moving version (`latest`, a range) would make two installs of one commit differ.
    pub fn check(&self) -> Result<(), String> {
        for (name, prerequisite) in &self.prerequisites {
            let problem = if prerequisite.purpose.trim().is_empty() {
                Some("`purpose` is empty: say what the platform needs it for".to_owned())
            } else if !prerequisite.source.starts_with("https://") {
                Some(format!(
                    "`source` must be an https:// URL of its Helm repository or releases; found `{}`",
                    prerequisite.source
                ))
            } else if prerequisite.kind == PrerequisiteKind::HelmChart
                && prerequisite.chart.is_none()
            {
                Some("a `helm-chart` names its `chart`".to_owned())
            } else if prerequisite.kind == PrerequisiteKind::Manifest
                && prerequisite
                    .git
                    .as_ref()
                    .is_some_and(|git| !git.repository.starts_with("https://"))
            {
                Some("`git.repository` must be an https:// Git URL".to_owned())
            } else if !is_exact_version(&prerequisite.version) {
                Some(format!(
                    "`version` must be one exact release, e.g. `v1.2.3` or `0.2.26`; found `{}`",
                    prerequisite.version
                ))
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(format!("prerequisites.{name}: {problem}"));
            }
        }
        Ok(())
    }

    /// Sets `setting` of `component`'s defaults (as serialised) to each image of that component.
    /// An image for a setting the defaults file already sets, or one the component does not
    /// have (`known` lists its settings), is an error naming the key.
    pub fn fill_defaults(
        &self,
        component: &str,
        defaults: &mut Value,
        known: &[&str],
    ) -> Result<(), String> {
        for (key, image) in &self.images {
            let Some(setting) = key
                .strip_prefix(component)
                .and_then(|rest| rest.strip_prefix('.'))
            else {
                continue;
            };
            if !known.contains(&setting) {
                return Err(format!(
                    "images.`{key}`: component `{component}` has no setting `{setting}` (its \
                     settings: {})",
                    known.join(", ")
                ));
            }
            let slot = &mut defaults[setting];
            if !slot.is_null() {
                return Err(format!(
                    "images.`{key}`: also set in `components/{component}/defaults.yaml`; an \
                     upstream image is set only here"
                ));
            }
            *slot = json!({
                "repository": image.repository.to_string(),
                "tag": image.tag.to_string(),
                "digest": image.digest.as_ref().map(ToString::to_string),
            });
        }
        Ok(())
    }

    /// Keys naming a component that does not exist.
    pub fn unknown_components<'a>(&'a self, components: &'a [&str]) -> Vec<&'a str> {
        self.images
            .keys()
            .map(String::as_str)
            .filter(|key| {
                key.split_once('.')
                    .is_none_or(|(component, _)| !components.contains(&component))
            })
            .collect()
    }
}

/// `v1.2.3` or `1.2.3` (with an optional `-suffix`): three numbers, nothing floating.
fn is_exact_version(version: &str) -> bool {
    let core = version.strip_prefix('v').unwrap_or(version);
    let core = core.split_once('-').map_or(core, |(core, _)| core);
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|part| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::is_exact_version;
    use crate::resolve::tests::repo;

    #[test]
    fn versions_must_be_exact() {
        for good in ["v1.18.2", "0.2.26", "v1.0.0-rc.1"] {
            assert!(is_exact_version(good), "{good}");
        }
        for bad in ["latest", "v1.18", "1.x.0", "^1.2.3", ""] {
            assert!(!is_exact_version(bad), "{bad}");
        }
    }

    #[test]
    fn the_committed_file_passes_its_own_checks() {
        let upstream = repo().upstream().unwrap();
        assert_eq!(upstream.check(), Ok(()));
        for name in [
            "hivemqPlatformOperator",
            "certManager",
            "cloudNativePg",
            "gatewayApi",
            "envoyGateway",
        ] {
            assert!(upstream.prerequisites.contains_key(name), "{name}");
        }
    }

    /// renovate.json's first regex manager reads the comment above each `version:`; a version
    /// without one would never be bumped.
    #[test]
    fn every_prerequisite_version_carries_its_renovate_comment() {
        let text = std::fs::read_to_string(repo().root.join(super::UPSTREAM_FILE)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let versions: Vec<usize> = (1..lines.len())
            .filter(|&index| lines[index].trim_start().starts_with("version: "))
            .collect();
        assert_eq!(
            versions.len(),
            repo().upstream().unwrap().prerequisites.len()
        );
        for index in versions {
            assert!(
                lines[index - 1]
                    .trim_start()
                    .starts_with("# renovate: datasource="),
                "line {}: {}",
                index + 1,
                lines[index]
            );
        }
    }

    /// Applies renovate.json's regex managers for components/upstream.yaml to the committed file,
    /// as Renovate would: every prerequisite and every image must be found, with its version, and
    /// the digest where one is recorded; a pin the managers miss would never be bumped.
    #[test]
    fn renovate_finds_every_pin_of_the_upstream_file() {
        let root = repo().root;
        let config: Value =
            serde_json::from_str(&std::fs::read_to_string(root.join("renovate.json")).unwrap())
                .unwrap();
        let text = std::fs::read_to_string(root.join(super::UPSTREAM_FILE)).unwrap();
        let mut found: Vec<(String, String, Option<String>)> = Vec::new();
        for manager in config["customManagers"].as_array().unwrap() {
            let patterns = manager["managerFilePatterns"].as_array().unwrap();
            if !patterns
                .iter()
                .any(|p| p.as_str().unwrap().contains("upstream"))
            {
                continue;
            }
            for pattern in manager["matchStrings"].as_array().unwrap() {
                let regex = regex::Regex::new(pattern.as_str().unwrap()).unwrap();
                for captures in regex.captures_iter(&text) {
                    found.push((
                        captures["depName"].to_owned(),
                        captures["currentValue"].to_owned(),
                        captures
                            .name("currentDigest")
                            .map(|m| m.as_str().to_owned()),
                    ));
                }
            }
        }
        let upstream = repo().upstream().unwrap();
        assert_eq!(
            found.len(),
            upstream.prerequisites.len() + upstream.images.len(),
            "{found:#?}"
        );
        for prerequisite in upstream.prerequisites.values() {
            assert!(
                found
                    .iter()
                    .any(|(_, version, _)| *version == prerequisite.version),
                "{} {}",
                prerequisite.source,
                prerequisite.version
            );
        }
        for image in upstream.images.values() {
            let entry = (
                image.repository.to_string(),
                image.tag.to_string(),
                image.digest.as_ref().map(ToString::to_string),
            );
            assert!(found.contains(&entry), "{entry:?} not in {found:#?}");
        }
        assert!(found.iter().any(|(_, _, digest)| digest.is_some()));
    }

    #[test]
    fn an_image_also_set_in_a_defaults_file_or_for_an_unknown_setting_is_refused() {
        let upstream = repo().upstream().unwrap();
        let known = ["image", "replicas"];
        let mut defaults = serde_json::json!({"image": {"repository": "x", "tag": "1"}});
        let error = upstream
            .fill_defaults("kafka", &mut defaults, &known)
            .unwrap_err();
        assert!(
            error.contains("also set in `components/kafka/defaults.yaml`"),
            "{error}"
        );
        let error = upstream
            .fill_defaults("kafka", &mut Value::Null, &["replicas"])
            .unwrap_err();
        assert!(error.contains("has no setting `image`"), "{error}");
    }

    /// Every image in rendered YAML text, found by key at any depth, so images inside ConfigMap
    /// files (the provisioner's helper pod) count: `image:`, CloudNativePG's `imageName:` and
    /// its extension images' `reference:`.
    fn images_in(text: &str, found: &mut BTreeSet<String>) {
        for line in text.lines() {
            let line = line.trim_start().trim_start_matches("- ");
            for key in ["image: ", "imageName: ", "reference: "] {
                if let Some(image) = line.strip_prefix(key) {
                    found.insert(image.trim().to_owned());
                }
            }
        }
    }

    #[test]
    fn every_rendered_image_is_pinned_in_the_upstream_file_or_built_here() {
        let root = repo().root;
        let upstream = repo().upstream().unwrap();
        let pinned: BTreeSet<String> = upstream.images.values().map(ToString::to_string).collect();
        let mut rendered = BTreeSet::new();
        let mut stack = vec![root.join("rendered")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    images_in(&std::fs::read_to_string(&path).unwrap(), &mut rendered);
                }
            }
        }
        assert!(rendered.len() >= pinned.len(), "{rendered:#?}");
        for image in &rendered {
            let built_here = image.starts_with("ghcr.io/ehs-platform/");
            assert!(
                pinned.contains(image) || built_here,
                "{image} is rendered but not pinned in components/upstream.yaml"
            );
        }
        for image in &pinned {
            assert!(
                rendered.contains(image),
                "{image} is pinned but rendered nowhere"
            );
        }
    }
}
