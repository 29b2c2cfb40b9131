//! Where pods come from: the pod templates inside workloads, their containers, and label selectors.

use serde_json::{Map, Value};

use super::path::FieldPath;
use super::schema::{PodTemplatePaths, Registry};
use crate::manifest::Manifest;

/// The pod template of a workload (or a bare Pod), with where it sits in the object.
pub(super) struct PodTemplate<'a> {
    pub(super) manifest: &'a Manifest,
    /// Labels every pod of this template carries.
    pub(super) labels: Map<String, Value>,
    /// The `PodSpec`.
    pub(super) spec: &'a Value,
    pub(super) spec_path: FieldPath,
    /// Where the claim templates of the pods' per-pod volumes are, for kinds that have them.
    claims_path: Option<&'static str>,
    /// Where the workload's pod selector is.
    pub(super) selector_path: &'static str,
}

impl<'a> PodTemplate<'a> {
    /// The pod template of `manifest`, if its kind creates pods: a built-in workload, or a
    /// custom resource whose component declared where its template is.
    pub(super) fn of(manifest: &'a Manifest, kinds: &Registry) -> Option<Self> {
        let PodTemplatePaths {
            template: template_path,
            selector: selector_path,
            claims: claims_path,
        } = if kinds.is_custom(manifest.api_version(), manifest.kind()) == Some(true) {
            kinds.pod_template_paths(manifest.api_version(), manifest.kind())?
        } else {
            built_in_paths(manifest.kind())?
        };
        let template = lookup(&manifest.value, template_path)?;
        let spec = template.get("spec")?;
        let labels = template
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        Some(Self {
            manifest,
            labels,
            spec,
            spec_path: FieldPath::of(template_path).key("spec"),
            claims_path,
            selector_path,
        })
    }

    /// The claim templates of per-pod volumes, with their paths.
    pub(super) fn claim_templates(&self) -> Vec<(FieldPath, &'a Value)> {
        let Some(claims_path) = self.claims_path else {
            return Vec::new();
        };
        items(lookup(&self.manifest.value, claims_path))
            .map(|(index, claim)| (FieldPath::of(claims_path).index(index), claim))
            .collect()
    }

    pub(super) fn namespace(&self) -> Option<&'a str> {
        self.manifest.namespace()
    }

    /// Every container that runs in the pod: init containers first, then the main ones.
    pub(super) fn containers(&self) -> Vec<Container<'a>> {
        ["initContainers", "containers"]
            .into_iter()
            .flat_map(|list| {
                let path = self.spec_path.key(list);
                items(self.spec.get(list)).map(move |(index, value)| Container {
                    value,
                    path: path.index(index),
                })
            })
            .collect()
    }

    /// Whether `selector` (a plain label map, as in a Service) selects this template's pods.
    pub(super) fn matched_by_labels(&self, selector: &Map<String, Value>) -> bool {
        selector
            .iter()
            .all(|(key, value)| self.labels.get(key) == Some(value))
    }
}

pub(super) struct Container<'a> {
    pub(super) value: &'a Value,
    pub(super) path: FieldPath,
}

/// Where the Kubernetes workload kinds keep their pod template, selector and claim templates.
fn built_in_paths(kind: &str) -> Option<PodTemplatePaths> {
    let template = match kind {
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController" => "spec.template",
        "CronJob" => "spec.jobTemplate.spec.template",
        "Pod" => "",
        _ => return None,
    };
    Some(PodTemplatePaths {
        template,
        selector: "spec.selector",
        claims: (kind == "StatefulSet").then_some("spec.volumeClaimTemplates"),
    })
}

/// Every pod template among `objects`.
pub(super) fn pod_templates<'a>(objects: &'a [Manifest], kinds: &Registry) -> Vec<PodTemplate<'a>> {
    objects
        .iter()
        .filter_map(|manifest| PodTemplate::of(manifest, kinds))
        .collect()
}

/// Follows a dotted path of plain keys; the empty path is the value itself.
pub(super) fn lookup<'a>(value: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted
        .split('.')
        .filter(|key| !key.is_empty())
        .try_fold(value, |current, key| current.get(key))
}

/// The elements of an optional JSON array with their indexes (nothing if absent or not an array).
pub(crate) fn items(list: Option<&Value>) -> impl Iterator<Item = (usize, &Value)> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

/// The string at `key` of a JSON object, or "" when absent or not a string (the schema check
/// reports wrong types; the reference checks then see a name that matches nothing).
pub(crate) fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// A `metav1.LabelSelector` that could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum SelectorError {
    #[error("unknown operator `{0}` (valid: In, NotIn, Exists, DoesNotExist)")]
    UnknownOperator(String),
}

/// Whether a `metav1.LabelSelector` (`matchLabels` and `matchExpressions`) selects `labels`.
/// An empty selector selects everything, as in Kubernetes.
pub(super) fn label_selector_matches(
    selector: &Value,
    labels: &Map<String, Value>,
) -> Result<bool, SelectorError> {
    let match_labels = selector.get("matchLabels").and_then(Value::as_object);
    if let Some(required) = match_labels {
        if !required
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value))
        {
            return Ok(false);
        }
    }
    for (_, expression) in items(selector.get("matchExpressions")) {
        let key = text(expression, "key");
        let operator = text(expression, "operator");
        let label = labels.get(key).and_then(Value::as_str);
        let listed = |label: &str| {
            items(expression.get("values")).any(|(_, value)| value.as_str() == Some(label))
        };
        let matches = match operator {
            "In" => label.is_some_and(listed),
            "NotIn" => !label.is_some_and(listed),
            "Exists" => label.is_some(),
            "DoesNotExist" => label.is_none(),
            other => return Err(SelectorError::UnknownOperator(other.to_owned())),
        };
        if !matches {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether a `metav1.LabelSelector` has no terms at all (and so selects everything).
pub(super) fn label_selector_is_empty(selector: &Value) -> bool {
    let no_labels = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .is_none_or(Map::is_empty);
    let no_expressions = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    no_labels && no_expressions
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::schema::registry;
    use super::*;

    fn manifest(value: Value) -> Manifest {
        Manifest {
            component: "test".into(),
            value,
        }
    }

    fn labels(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn templates_are_found_in_every_workload_kind() {
        let template = json!({"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "main"}]}});
        let cases = [
            (
                json!({"kind": "StatefulSet", "spec": {"template": template}}),
                "spec.template.spec",
            ),
            (
                json!({"kind": "Deployment", "spec": {"template": template}}),
                "spec.template.spec",
            ),
            (
                json!({"kind": "Job", "spec": {"template": template}}),
                "spec.template.spec",
            ),
            (
                json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": template}}}}),
                "spec.jobTemplate.spec.template.spec",
            ),
            (
                json!({"kind": "Pod", "metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "main"}]}}),
                "spec",
            ),
        ];
        for (value, spec_path) in cases {
            let object = manifest(value);
            let Some(template) = PodTemplate::of(&object, registry()) else {
                panic!("no template in {:?}", object.value)
            };
            assert_eq!(template.spec_path.to_string(), spec_path);
            assert_eq!(template.labels, labels(json!({"app": "x"})));
            assert_eq!(
                template.containers()[0].path.to_string(),
                format!("{spec_path}.containers[0]")
            );
        }
        assert!(PodTemplate::of(
            &manifest(json!({"kind": "Service", "spec": {}})),
            registry()
        )
        .is_none());
    }

    #[test]
    fn a_custom_resource_has_the_pod_template_its_component_declares() {
        let (_, objects) = super::super::testing::built("prod");
        let hivemq = objects
            .iter()
            .find(|object| object.kind() == "HiveMQPlatform")
            .unwrap();
        let Some(template) = PodTemplate::of(hivemq, registry()) else {
            panic!("no template in the HiveMQPlatform")
        };
        assert_eq!(
            template.spec_path.to_string(),
            "spec.statefulSet.spec.template.spec"
        );
        assert_eq!(template.selector_path, "spec.statefulSet.spec.selector");
        let claims: Vec<String> = template
            .claim_templates()
            .iter()
            .map(|(path, _)| path.to_string())
            .collect();
        assert_eq!(claims, ["spec.statefulSet.spec.volumeClaimTemplates[0]"]);
        // A custom resource that declares none has no pods, whatever it holds.
        let cluster = objects
            .iter()
            .find(|object| object.kind() == "Cluster")
            .unwrap();
        assert!(PodTemplate::of(cluster, registry()).is_none());
        let mut undeclared = hivemq.clone();
        undeclared.value["apiVersion"] = json!("example.com/v1");
        assert!(PodTemplate::of(&undeclared, registry()).is_none());
    }

    #[test]
    fn init_containers_come_first() {
        let object = manifest(json!({"kind": "Pod", "spec": {
            "initContainers": [{"name": "init"}], "containers": [{"name": "main"}, {"name": "side"}]
        }}));
        let Some(template) = PodTemplate::of(&object, registry()) else {
            panic!("no template")
        };
        let names: Vec<String> = template
            .containers()
            .iter()
            .map(|container| container.value["name"].to_string())
            .collect();
        assert_eq!(names, ["\"init\"", "\"main\"", "\"side\""]);
        assert_eq!(
            template.containers()[0].path.to_string(),
            "spec.initContainers[0]"
        );
    }

    #[test]
    fn label_selectors_follow_kubernetes_semantics() {
        let pod = labels(json!({"app": "kafka", "tier": "data"}));
        let cases = [
            (json!({}), true),
            (json!({"matchLabels": {"app": "kafka"}}), true),
            (json!({"matchLabels": {"app": "bridge"}}), false),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["data", "web"]}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]}),
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["data"]}]}),
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "app", "operator": "Exists"}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "zone", "operator": "Exists"}]}),
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}),
                true,
            ),
            (
                json!({"matchLabels": {"app": "kafka"}, "matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}),
                false,
            ),
        ];
        for (selector, expected) in cases {
            assert_eq!(
                label_selector_matches(&selector, &pod),
                Ok(expected),
                "{selector}"
            );
        }
        let bad = json!({"matchExpressions": [{"key": "app", "operator": "Equals"}]});
        assert_eq!(
            label_selector_matches(&bad, &pod),
            Err(SelectorError::UnknownOperator("Equals".into()))
        );
        assert!(label_selector_is_empty(&json!({"matchLabels": {}})));
        assert!(!label_selector_is_empty(
            &json!({"matchLabels": {"app": "kafka"}})
        ));
    }
}
