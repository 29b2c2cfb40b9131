//! `ehs validate`: schema, cross-reference and platform-invariant checks on rendered objects.
//!
//! The compiler calls [`validate`] after building an environment's objects and before emitting
//! them. Every check reports every failure it sees, so one run shows the whole list.
//!
//! - `schema`: each object against the JSON Schema of its kind, strict about unknown fields.
//! - `references`: selectors, named ports and names of other objects resolve within the environment.
//! - `invariants`: Kafka replication and quorum rules, HA in production, resources, Pod Security
//!   "restricted", one namespace per environment.

mod invariants;
mod path;
mod pods;
mod references;
mod schema;

use crate::manifest::Manifest;

/// What the model knows that the objects alone do not show clearly.
#[derive(Debug, Clone, Default)]
pub struct PlatformFacts {
    /// Environment name, e.g. `prod`.
    pub environment: String,
    /// Production environments must meet the HA invariants (≥ 2 replicas per stateful component,
    /// min ISR < RF).
    pub production: bool,
    pub kafka: KafkaFacts,
    /// Objects the manifests may reference that are provided outside this repository
    /// (e.g. `StorageClass/local-path`, `Secret/mqtt-credentials`).
    pub provided_externally: Vec<ExternalObject>,
    /// Findings a component makes about its own settings: (field in the environment, reason).
    pub component_problems: Vec<(String, String)>,
    /// Objects named inside rendered objects where the generic checks do not look (e.g. fields
    /// of custom resources); each must be rendered or provided externally.
    pub component_references: Vec<DeclaredReference>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredReference {
    /// Kind and name of the rendered object holding the reference.
    pub from: (&'static str, String),
    /// Dotted path of the field in that object.
    pub field: String,
    /// Kind and name of the object it names.
    pub to: (&'static str, String),
}

#[derive(Debug, Clone, Default)]
pub struct KafkaFacts {
    /// Nodes that host partitions.
    pub brokers: u32,
    /// KRaft controller quorum voters.
    pub controller_voters: u32,
    pub topics: Vec<TopicFacts>,
}

#[derive(Debug, Clone, Default)]
pub struct TopicFacts {
    pub name: String,
    pub partitions: u32,
    pub replication_factor: u32,
    pub min_insync_replicas: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExternalObject {
    pub kind: String,
    pub name: String,
}

/// One failed check. Displayed as `<environment>: <object>: <field>: <reason>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub environment: String,
    /// `<component>/<Kind>/<name>`, or `environment` for model-level invariants.
    pub object: String,
    /// JSON pointer or dotted path of the offending field.
    pub field: String,
    pub reason: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}: {}: {}",
            self.environment, self.object, self.field, self.reason
        )
    }
}

/// Runs every check and returns all failures (empty = valid), sorted.
pub fn validate(objects: &[Manifest], facts: &PlatformFacts) -> Vec<Finding> {
    let mut report = Report::new(&facts.environment);
    schema::check(objects, &mut report);
    references::check(objects, facts, &mut report);
    invariants::check(objects, facts, &mut report);
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
struct Report {
    environment: String,
    findings: Vec<Finding>,
}

impl Report {
    fn new(environment: &str) -> Self {
        Self {
            environment: environment.to_owned(),
            findings: Vec::new(),
        }
    }

    fn object(&mut self, manifest: &Manifest, field: impl ToString, reason: impl Into<String>) {
        let object = object_label(manifest);
        self.push(object, field.to_string(), reason.into());
    }

    fn model(&mut self, field: impl ToString, reason: impl Into<String>) {
        self.push(MODEL_OBJECT.to_owned(), field.to_string(), reason.into());
    }

    fn push(&mut self, object: String, field: String, reason: String) {
        self.findings.push(Finding {
            environment: self.environment.clone(),
            object,
            field,
            reason,
        });
    }

    fn into_sorted(mut self) -> Vec<Finding> {
        self.findings.sort();
        self.findings.dedup();
        self.findings
    }
}

#[cfg(test)]
mod fixtures;

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn a_complete_valid_environment_has_no_findings() {
        let findings = validate(&good_environment(), &prod_facts());
        assert_eq!(findings, Vec::<Finding>::new());
    }

    #[test]
    fn findings_name_environment_object_and_field_and_come_sorted() {
        let mut objects = changed(
            "StatefulSet",
            "kafka",
            "/spec/replicas",
            serde_json::json!(1),
        );
        set(
            &mut objects,
            "Service",
            "kafka",
            "/spec/selux",
            serde_json::json!({}),
        );
        let findings = validate(&objects, &prod_facts());
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
}
