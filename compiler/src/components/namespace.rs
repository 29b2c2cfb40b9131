//! The environment's namespace, with Pod Security admission labels.

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{manifest, App, ComponentError, ComponentHooks};
use crate::manifest::Manifest;
use crate::model::PodSecurityVersion;
use crate::resolve::Platform;
use crate::templates::Templates;
use crate::validate::KindSchema;

pub const NAME: &str = "namespace";

/// Overridable settings of the namespace.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "NamespaceSettings")]
pub struct Layer {
    /// Pod Security Standard the namespace enforces, audits and warns about.
    pub pod_security_level: Option<PodSecurityLevel>,
    /// Version of the Pod Security Standard, e.g. `v1.35` (pinned so a cluster upgrade cannot
    /// silently tighten or loosen it) or `latest`.
    pub pod_security_version: Option<PodSecurityVersion>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PodSecurityLevel {
    Privileged,
    Baseline,
    Restricted,
}

impl PodSecurityLevel {
    const fn label_value(self) -> &'static str {
        match self {
            Self::Privileged => "privileged",
            Self::Baseline => "baseline",
            Self::Restricted => "restricted",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub pod_security_level: PodSecurityLevel,
    pub pod_security_version: PodSecurityVersion,
}

/// Pod Security admission labels enforcing, auditing and warning about `level` at `version`.
pub fn pod_security_labels(
    level: PodSecurityLevel,
    version: &PodSecurityVersion,
) -> Vec<(String, String)> {
    ["enforce", "audit", "warn"]
        .into_iter()
        .flat_map(|mode| {
            [
                (
                    format!("pod-security.kubernetes.io/{mode}"),
                    level.label_value().to_owned(),
                ),
                (
                    format!("pod-security.kubernetes.io/{mode}-version"),
                    version.to_string(),
                ),
            ]
        })
        .collect()
}

/// Annotation recording the environment's public DNS domain on its namespace, for tools that
/// route or certify per environment.
pub const DOMAIN_ANNOTATION: &str = "ehs-platform.io/domain";

pub fn build(platform: &Platform, _: &Templates) -> Result<Vec<Manifest>, ComponentError> {
    let settings = &platform.namespace;
    let app = App {
        platform,
        name: PART_OF_NAME,
        component: NAME,
    };
    let mut labels = app.labels();
    labels.extend(pod_security_labels(
        settings.pod_security_level,
        &settings.pod_security_version,
    ));
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(platform.environment.namespace.to_string()),
            labels: Some(labels),
            annotations: Some(
                [(
                    DOMAIN_ANNOTATION.to_owned(),
                    platform.environment.domain.to_string(),
                )]
                .into(),
            ),
            ..Default::default()
        },
        ..Default::default()
    };
    Ok(vec![manifest(NAME, &namespace)?])
}

/// The namespace's part in `ehs validate`: the generic checks already require exactly one
/// Namespace enforcing Pod Security restricted.
pub struct Hooks;

impl ComponentHooks for Hooks {
    fn stage() -> super::Stage {
        super::Stage::Namespace
    }

    fn kinds() -> Vec<KindSchema> {
        vec![KindSchema::of::<Namespace>()]
    }
}

/// The namespace belongs to the platform as a whole rather than to one application.
const PART_OF_NAME: &str = super::PART_OF;

#[cfg(test)]
mod tests {
    use crate::resolve::tests::platform;

    #[test]
    fn enforces_restricted_pod_security() {
        let objects = super::build(&platform("prod"), &crate::resolve::tests::templates()).unwrap();
        let labels = &objects[0].value["metadata"]["labels"];
        assert_eq!(labels["pod-security.kubernetes.io/enforce"], "restricted");
        assert_eq!(
            labels["pod-security.kubernetes.io/enforce-version"],
            "v1.35"
        );
        assert_eq!(objects[0].value["metadata"]["name"], "ehs-prod");
    }
}
