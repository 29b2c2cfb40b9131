//! `ehs validate`: schema, cross-reference and platform-invariant checks on rendered objects.
//!
//! The compiler calls [`validate`] after building an environment's objects and before emitting
//! them. Every check reports every failure it sees, so one run shows the whole list.
//!
//! - `schema`: each object against the JSON Schema of its kind (the kinds its component declares),
//!   strict about unknown fields.
//! - `crds` (with `--crds DIR`): each custom resource against its operator's CRD, as strictly.
//! - `references`: selectors, named ports and names of other objects resolve within the
//!   environment, including the references components declare.
//! - `invariants`: HA in production, resources, Pod Security "restricted", one namespace per
//!   environment.
//! - each component's own invariants (`ComponentHooks::invariants`): this module knows no
//!   component.

mod crds;
mod invariants;
mod path;
mod pods;
mod references;
mod schema;

pub use crds::{CrdError, Crds};
pub use path::FieldPath;
/// JSON helpers components' own checks share with the generic ones.
pub(crate) use pods::{items, text};
pub use schema::{KindSchema, PodTemplatePaths};

use crate::components::{self, Component};
use crate::manifest::Manifest;
use crate::resolve::Platform;

/// An object a component's object names where the generic checks cannot see it; see
/// [`ComponentHooks::references`](crate::components::ComponentHooks::references).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Kind and name of the rendered object that holds the reference.
    pub from: (&'static str, String),
    /// Where in that object, e.g. `spec.template.spec.containers[0].env`.
    pub field: FieldPath,
    /// Kind and name of the object it names (in the environment's namespace when namespaced).
    pub to: (&'static str, String),
}

/// How bad a finding is. Errors fail `ehs validate` and `ehs render`; warnings are printed and
/// fail them only with `--deny-warnings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    /// A choice that works but that production should not keep, e.g. running HiveMQ without a
    /// licence.
    Warning,
}

/// One failed check. Displayed as `<environment>: <object>: <field>: <reason>`, with `warning: `
/// before the reason of a warning.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub environment: String,
    /// `<component>/<Kind>/<name>`, or `environment` for model-level invariants.
    pub object: String,
    /// JSON pointer or dotted path of the offending field.
    pub field: String,
    pub reason: String,
    pub severity: Severity,
}

impl Finding {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let severity = match self.severity {
            Severity::Error => "",
            Severity::Warning => "warning: ",
        };
        write!(
            f,
            "{}: {}: {}: {severity}{}",
            self.environment, self.object, self.field, self.reason
        )
    }
}

/// Runs every check, the generic ones and every component's own, and returns all failures
/// (empty = valid), sorted. Tests' shorthand for [`validate_against`] without CRDs.
#[cfg(test)]
pub fn validate(objects: &[Manifest], platform: &Platform) -> Vec<Finding> {
    validate_against(objects, platform, None)
}

/// [`validate`], and with `crds` every custom resource against its CRD too.
pub fn validate_against(
    objects: &[Manifest],
    platform: &Platform,
    crds: Option<&Crds>,
) -> Vec<Finding> {
    check_all(objects, platform, components::ALL, schema::registry(), crds)
}

fn check_all(
    objects: &[Manifest],
    platform: &Platform,
    components: &[Component],
    kinds: &schema::Registry,
    crds: Option<&Crds>,
) -> Vec<Finding> {
    let mut report = Report::new(&platform.environment.name);
    schema::check(objects, kinds, &mut report);
    if let Some(crds) = crds {
        crds::check(objects, kinds, crds, &mut report);
    }
    let declared: Vec<Reference> = components
        .iter()
        .flat_map(|component| (component.references)(platform))
        .collect();
    let operator_created: Vec<(&'static str, String)> = components
        .iter()
        .flat_map(|component| (component.operator_created)(platform))
        .collect();
    references::check(
        objects,
        platform,
        kinds,
        &declared,
        &operator_created,
        &mut report,
    );
    let own_namespaces: Vec<String> = components
        .iter()
        .flat_map(|component| (component.namespaces)(platform))
        .collect();
    let tool_namespaces: Vec<String> = components
        .iter()
        .flat_map(|component| (component.tool_namespaces)(platform))
        .collect();
    invariants::check(
        objects,
        platform.environment.production,
        &own_namespaces,
        &tool_namespaces,
        kinds,
        &mut report,
    );
    for component in components {
        (component.invariants)(platform, objects, &mut report);
    }
    report.into_sorted()
}

/// The object name used in findings: `<component>/<Kind>/<name>`.
fn object_label(manifest: &Manifest) -> String {
    let name = match manifest.name() {
        "" => "<unnamed>",
        name => name,
    };
    let kind = match manifest.kind() {
        "" => "<no kind>",
        kind => kind,
    };
    format!("{}/{}/{}", manifest.component, kind, name)
}

/// The `object` of findings about the model rather than one rendered object.
const MODEL_OBJECT: &str = "environment";

/// Collects findings for one environment.
pub struct Report {
    environment: String,
    findings: Vec<Finding>,
}

impl Report {
    pub fn new(environment: &str) -> Self {
        Self {
            environment: environment.to_owned(),
            findings: Vec::new(),
        }
    }

    /// A finding about one rendered object.
    pub fn object(&mut self, manifest: &Manifest, field: impl ToString, reason: impl Into<String>) {
        self.object_as(Severity::Error, manifest, field, reason);
    }

    /// A finding about one rendered object, of the given severity.
    pub fn object_as(
        &mut self,
        severity: Severity,
        manifest: &Manifest,
        field: impl ToString,
        reason: impl Into<String>,
    ) {
        let object = object_label(manifest);
        self.push(severity, object, field.to_string(), reason.into());
    }

    /// A finding about the resolved settings rather than one object, e.g. `kafka.replicas`.
    pub fn model(&mut self, field: impl ToString, reason: impl Into<String>) {
        self.model_as(Severity::Error, field, reason);
    }

    /// A finding about the resolved settings, of the given severity.
    pub fn model_as(
        &mut self,
        severity: Severity,
        field: impl ToString,
        reason: impl Into<String>,
    ) {
        let object = MODEL_OBJECT.to_owned();
        self.push(severity, object, field.to_string(), reason.into());
    }

    fn push(&mut self, severity: Severity, object: String, field: String, reason: String) {
        self.findings.push(Finding {
            environment: self.environment.clone(),
            object,
            field,
            reason,
            severity,
        });
    }

    pub fn into_sorted(mut self) -> Vec<Finding> {
        self.findings.sort();
        self.findings.dedup();
        self.findings
    }
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::testing::*;
    use super::*;
    use crate::components::ComponentHooks;

    #[test]
    fn what_the_compiler_builds_for_every_committed_environment_is_valid() {
        for environment in ["dev", "prod"] {
            let (platform, objects) = built(environment);
            assert_eq!(validate(&objects, &platform), Vec::<Finding>::new());
        }
    }

    #[test]
    fn findings_name_environment_object_and_field_and_come_sorted() {
        let (platform, _) = built("prod");
        let mut objects = changed("StatefulSet", "kafka", "/spec/replicas", json!(1));
        set(&mut objects, "Service", "kafka", "/spec/selux", json!({}));
        let findings = validate(&objects, &platform);
        let shown: Vec<String> = findings.iter().map(ToString::to_string).collect();
        assert!(
            shown.contains(&"prod: kafka/StatefulSet/kafka: spec.replicas: a StatefulSet in production needs at least 2 replicas so it survives losing one pod; found 1".to_owned()),
            "{shown:#?}"
        );
        assert!(
            shown.iter().any(
                |line| line.starts_with("prod: kafka/Service/kafka: spec.selux: unknown field")
            ),
            "{shown:#?}"
        );
        let mut sorted = findings.clone();
        sorted.sort();
        assert_eq!(findings, sorted);
    }

    #[test]
    fn every_components_invariants_run() {
        let (mut platform, objects) = built("prod");
        platform.kafka.replicas = 4.into();
        let fields: Vec<String> = triples(validate(&objects, &platform))
            .into_iter()
            .map(|(object, field, _)| format!("{object}: {field}"))
            .collect();
        assert_eq!(fields, ["environment: kafka.replicas"]);
    }

    #[test]
    fn a_kind_is_valid_only_from_a_component_that_declares_it() {
        let (platform, mut objects) = built("prod");
        // A kind no component declares.
        objects.push(Manifest {
            component: "kafka".into(),
            value: json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                          "metadata": {"name": "kafka"}, "value": 1}),
        });
        // A kind another component declares: only the namespace component renders Namespaces.
        objects.push(Manifest {
            component: "kafka".into(),
            value: json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}),
        });
        let found: Vec<(String, String, String)> = triples(validate(&objects, &platform))
            .into_iter()
            .filter(|(_, field, _)| field == "kind")
            .collect();
        assert_eq!(found.len(), 2, "{found:#?}");
        assert_eq!(found[0].0, "kafka/Namespace/x");
        assert_eq!(
            found[0].2,
            "component `kafka` renders apiVersion `v1` kind `Namespace` but does not declare \
             it; add it to `kinds` in its hooks (compiler/src/components/kafka.rs)"
        );
        assert_eq!(found[1].0, "kafka/PriorityClass/kafka");
        assert!(
            found[1].2.starts_with(
                "no component declares apiVersion `scheduling.k8s.io/v1` kind `PriorityClass`"
            ),
            "{}",
            found[1].2
        );
    }

    #[test]
    fn references_components_declare_must_resolve() {
        let (mut platform, objects) = built("prod");
        platform
            .environment
            .provided_externally
            .retain(|object| object.kind != "Service");
        // HiveMQ's MQTT Service is not rendered: the operator creates it from the
        // HiveMQPlatform, which declares it, so the bridge's reference to it resolves.
        assert_eq!(triples(validate(&objects, &platform)), []);
        // Kafka's client Service is rendered, so the bridge's reference to it resolves.
        assert!(crate::components::bridge::Hooks::references(&platform)
            .iter()
            .any(|reference| reference.to
                == (
                    "Service",
                    crate::components::kafka::CLIENT_SERVICE.to_owned()
                )));
        let without_kafka_service: Vec<Manifest> = objects
            .into_iter()
            .filter(|object| !(object.kind() == "Service" && object.name() == "kafka"))
            .collect();
        let fields: Vec<String> = triples(validate(&without_kafka_service, &platform))
            .into_iter()
            .filter(|(object, _, _)| object == "bridge/StatefulSet/ehs-bridge")
            .map(|(_, _, reason)| reason)
            .collect();
        assert!(
            fields
                .iter()
                .any(|reason| reason.starts_with("Service `kafka` does not exist")),
            "{fields:#?}"
        );
    }
}
