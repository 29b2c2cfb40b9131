//! Every object against the JSON Schema of its kind.
//!
//! Schemas come from the types we build objects with (k8s-openapi's schemars impls for core
//! kinds; our own typed structs for custom resources), so the check and the builders cannot drift
//! apart. The generated schemas are tightened before use:
//! - unknown fields fail, as with `kubectl apply --validate=strict` (k8s-openapi leaves objects open);
//! - `IntOrString` and `Quantity` are constrained (k8s-openapi leaves them as "anything");
//! - `metadata.name` is required on every top-level object.
//!
//! Validators are compiled on first use of a kind and cached for the life of the process.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;
use jsonschema::paths::LocationSegment;
use jsonschema::Validator;
use k8s_openapi::api::{
    apps, autoscaling, batch, core, networking, policy, rbac, scheduling, storage,
};
use k8s_openapi::{NamespaceResourceScope, Resource};
use schemars::JsonSchema;
use serde_json::{json, Map, Value};

use super::path::FieldPath;
use super::Report;
use crate::manifest::Manifest;

/// The kinds we can check. Registering a kind is one line: any type that implements
/// `k8s_openapi::Resource` and `schemars::JsonSchema` (k8s-openapi types, and our typed custom
/// resources once they implement both) — see [`KindSchema::of`]. A kind missing here fails
/// validation rather than passing unchecked.
fn registered_kinds() -> Vec<KindSchema> {
    vec![
        KindSchema::of::<core::v1::Namespace>(),
        KindSchema::of::<core::v1::ConfigMap>(),
        KindSchema::of::<core::v1::Secret>(),
        KindSchema::of::<core::v1::Service>(),
        KindSchema::of::<core::v1::ServiceAccount>(),
        KindSchema::of::<core::v1::PersistentVolumeClaim>(),
        KindSchema::of::<core::v1::Pod>(),
        KindSchema::of::<core::v1::LimitRange>(),
        KindSchema::of::<core::v1::ResourceQuota>(),
        KindSchema::of::<apps::v1::StatefulSet>(),
        KindSchema::of::<apps::v1::Deployment>(),
        KindSchema::of::<apps::v1::DaemonSet>(),
        KindSchema::of::<batch::v1::Job>(),
        KindSchema::of::<batch::v1::CronJob>(),
        KindSchema::of::<policy::v1::PodDisruptionBudget>(),
        KindSchema::of::<autoscaling::v2::HorizontalPodAutoscaler>(),
        KindSchema::of::<networking::v1::NetworkPolicy>(),
        KindSchema::of::<networking::v1::Ingress>(),
        KindSchema::of::<rbac::v1::Role>(),
        KindSchema::of::<rbac::v1::RoleBinding>(),
        KindSchema::of::<rbac::v1::ClusterRole>(),
        KindSchema::of::<rbac::v1::ClusterRoleBinding>(),
        KindSchema::of::<storage::v1::StorageClass>(),
        KindSchema::of::<scheduling::v1::PriorityClass>(),
        KindSchema::of::<crate::components::timescaledb::Cluster>(),
    ]
}

/// How to check one kind: its identity, scope and schema.
pub(super) struct KindSchema {
    api_version: &'static str,
    kind: &'static str,
    namespaced: bool,
    generate: fn() -> schemars::Schema,
}

impl KindSchema {
    /// The schema of `T`, identified by its `apiVersion` and `kind`.
    pub(super) fn of<T: Resource + JsonSchema + 'static>() -> Self {
        Self {
            api_version: T::API_VERSION,
            kind: T::KIND,
            namespaced: std::any::TypeId::of::<T::Scope>()
                == std::any::TypeId::of::<NamespaceResourceScope>(),
            generate: || schemars::SchemaGenerator::default().into_root_schema_for::<T>(),
        }
    }
}

/// A kind's schema, tightened, and its validator, built on first use.
struct CompiledKind {
    schema: Value,
    validator: Result<Validator, String>,
}

struct RegisteredKind {
    definition: KindSchema,
    compiled: OnceLock<CompiledKind>,
}

impl RegisteredKind {
    fn compiled(&self) -> &CompiledKind {
        self.compiled.get_or_init(|| {
            let mut schema = (self.definition.generate)().to_value();
            tighten(&mut schema);
            let validator = jsonschema::validator_for(&schema).map_err(|error| error.to_string());
            CompiledKind { schema, validator }
        })
    }
}

type Registry = BTreeMap<(&'static str, &'static str), RegisteredKind>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        registered_kinds()
            .into_iter()
            .map(|definition| {
                (
                    (definition.api_version, definition.kind),
                    RegisteredKind {
                        definition,
                        compiled: OnceLock::new(),
                    },
                )
            })
            .collect()
    })
}

/// Whether objects of this kind live in a namespace; `None` for kinds we do not know.
pub(super) fn is_namespaced(api_version: &str, kind: &str) -> Option<bool> {
    registry()
        .get(&(api_version, kind))
        .map(|registered| registered.definition.namespaced)
}

/// Like [`is_namespaced`], for references that name only a kind (`roleRef`, `scaleTargetRef`,
/// external objects). No two registered kinds share a name across scopes.
pub(super) fn kind_is_namespaced(kind: &str) -> Option<bool> {
    registry()
        .iter()
        .find(|((_, known), _)| *known == kind)
        .map(|(_, registered)| registered.definition.namespaced)
}

pub(super) fn check(objects: &[Manifest], report: &mut Report) {
    for manifest in objects {
        check_object(manifest, report);
    }
}

fn check_object(manifest: &Manifest, report: &mut Report) {
    let (api_version, kind) = (manifest.api_version(), manifest.kind());
    let Some(registered) = registry().get(&(api_version, kind)) else {
        report.object(manifest, "kind", unknown_kind_reason(api_version, kind));
        return;
    };
    let compiled = registered.compiled();
    let validator = match &compiled.validator {
        Ok(validator) => validator,
        Err(error) => {
            let reason = format!(
                "internal error: the schema of {api_version}/{kind} does not compile: {error}"
            );
            report.object(manifest, "kind", reason);
            return;
        }
    };
    for error in validator.iter_errors(&manifest.value) {
        let segments: Vec<Segment> = error
            .instance_path()
            .segments()
            .map(Segment::from)
            .collect();
        let path = field_path(&segments);
        match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let known = known_fields(&compiled.schema, &segments);
                for field in unexpected {
                    report.object(
                        manifest,
                        path.key(field),
                        unknown_field_reason(field, &known),
                    );
                }
            }
            ValidationErrorKind::Required { property } => {
                let field = property.as_str().unwrap_or_default();
                report.object(manifest, path.key(field), "required field is missing");
            }
            ValidationErrorKind::AnyOf { .. } => {
                let reason = match schema_at(&compiled.schema, &segments)
                    .and_then(|schema| schema.get(EXPECTED_KEY))
                {
                    Some(Value::String(expected)) => {
                        format!("{} is not valid: expected {expected}", error.instance())
                    }
                    _ => error.to_string(),
                };
                report.object(manifest, path, reason);
            }
            _ => report.object(manifest, path, error.to_string()),
        }
    }
}

fn unknown_kind_reason(api_version: &str, kind: &str) -> String {
    let same_kind: Vec<&str> = registry()
        .keys()
        .filter(|(_, known)| *known == kind)
        .map(|(known_version, _)| *known_version)
        .collect();
    if let Some(api_version_hint) = same_kind.first() {
        return format!("`{kind}` is not served as apiVersion `{api_version}`; use apiVersion `{api_version_hint}`");
    }
    let known: Vec<&str> = registry().keys().map(|(_, known)| *known).collect();
    format!(
        "no schema is registered for apiVersion `{api_version}` kind `{kind}`, so it cannot be checked; \
         known kinds: {}; register its type in compiler/src/validate/schema.rs",
        known.join(", ")
    )
}

fn unknown_field_reason(field: &str, known: &[String]) -> String {
    let closest = known
        .iter()
        .map(|candidate| {
            (
                edit_distance(&field.to_lowercase(), &candidate.to_lowercase()),
                candidate,
            )
        })
        .min();
    match closest {
        Some((distance, candidate)) if distance <= 2.max(field.len() / 4) => {
            format!("unknown field `{field}`; did you mean `{candidate}`?")
        }
        _ if known.is_empty() => format!("unknown field `{field}`; no fields are allowed here"),
        _ => format!(
            "unknown field `{field}`; valid fields here: {}",
            known.join(", ")
        ),
    }
}

/// Levenshtein distance, for "did you mean" hints.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, a_char) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, b_char) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(a_char != *b_char);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// One step of an instance path, owned so it outlives the validation error.
enum Segment {
    Key(String),
    Index(usize),
}

impl From<LocationSegment<'_>> for Segment {
    fn from(segment: LocationSegment<'_>) -> Self {
        match segment {
            LocationSegment::Property(key) => Self::Key(key.into_owned()),
            LocationSegment::Index(index) => Self::Index(index),
        }
    }
}

fn field_path(segments: &[Segment]) -> FieldPath {
    segments
        .iter()
        .fold(FieldPath::root(), |path, segment| match segment {
            Segment::Key(key) => path.key(key),
            Segment::Index(index) => path.index(*index),
        })
}

/// The subschema that describes the value at `segments`, following `$ref`s into `$defs`.
fn schema_at<'a>(root: &'a Value, segments: &[Segment]) -> Option<&'a Value> {
    let mut schema = resolve(root, root)?;
    for segment in segments {
        let child = match segment {
            Segment::Key(key) => schema
                .get("properties")
                .and_then(|properties| properties.get(key))
                .or_else(|| {
                    schema
                        .get("additionalProperties")
                        .filter(|value| value.is_object())
                }),
            Segment::Index(_) => schema.get("items"),
        }?;
        schema = resolve(root, child)?;
    }
    Some(schema)
}

fn resolve<'a>(root: &'a Value, mut schema: &'a Value) -> Option<&'a Value> {
    // Bounded so a self-referencing definition cannot loop forever.
    for _ in 0..16 {
        let Some(reference) = schema.get("$ref").and_then(Value::as_str) else {
            return Some(schema);
        };
        let name = reference
            .strip_prefix("#/$defs/")?
            .replace("~1", "/")
            .replace("~0", "~");
        schema = root.get("$defs")?.get(&name)?;
    }
    None
}

fn known_fields(root: &Value, segments: &[Segment]) -> Vec<String> {
    schema_at(root, segments)
        .and_then(|schema| schema.get("properties"))
        .and_then(Value::as_object)
        .map(|properties| properties.keys().cloned().collect())
        .unwrap_or_default()
}

/// Annotation we add to loosely typed definitions, quoted in findings about them.
const EXPECTED_KEY: &str = "x-ehs-expected";

/// Kubernetes' own pattern for quantities (`k8s.io/apimachinery/pkg/api/resource`).
const QUANTITY_PATTERN: &str = r"^[+-]?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";

/// Makes a generated schema as strict as the API server.
fn tighten(root: &mut Value) {
    if let Some(definitions) = root.get_mut("$defs").and_then(Value::as_object_mut) {
        for (name, definition) in definitions.iter_mut() {
            if name.ends_with(".Quantity") {
                *definition = json!({
                    EXPECTED_KEY: "a Kubernetes quantity such as `500m`, `2`, `512Mi` or `10Gi`",
                    "anyOf": [{"type": "number"}, {"type": "string", "pattern": QUANTITY_PATTERN}],
                });
            }
        }
    }
    forbid_unknown_fields(root);
    constrain_int_or_string(root);
    // Kubernetes needs a name on every top-level object; ObjectMeta alone cannot say so because
    // nested templates legitimately have none.
    if let Some(metadata) = root
        .pointer_mut("/properties/metadata")
        .and_then(Value::as_object_mut)
    {
        metadata.insert("required".into(), json!(["name"]));
    }
    if let Some(root) = root.as_object_mut() {
        root.insert("required".into(), json!(["apiVersion", "kind", "metadata"]));
    }
}

/// Sets `additionalProperties: false` on every object schema that lists its properties.
fn forbid_unknown_fields(schema: &mut Value) {
    visit_schemas(schema, &mut |schema| {
        if schema.contains_key("properties") && !schema.contains_key("additionalProperties") {
            schema.insert("additionalProperties".into(), Value::Bool(false));
        }
    });
}

/// k8s-openapi marks int-or-string values with `x-kubernetes-int-or-string` and no type at all.
fn constrain_int_or_string(schema: &mut Value) {
    visit_schemas(schema, &mut |schema| {
        let marked = schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
        if marked && !schema.contains_key("type") && !schema.contains_key("anyOf") {
            schema.insert(
                "anyOf".into(),
                json!([{"type": "integer"}, {"type": "string"}]),
            );
            schema.insert(
                EXPECTED_KEY.into(),
                json!("an integer or a string (e.g. 8080 or a port name)"),
            );
        }
    });
}

/// Calls `visit` on `schema` and every subschema in it, walking only keywords that hold schemas
/// (so a property that happens to be named `properties` is not mistaken for the keyword).
fn visit_schemas(schema: &mut Value, visit: &mut dyn FnMut(&mut Map<String, Value>)) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    visit(object);
    for keyword in [
        "additionalProperties",
        "items",
        "not",
        "contains",
        "propertyNames",
    ] {
        if let Some(subschema) = object.get_mut(keyword) {
            visit_schemas(subschema, visit);
        }
    }
    for keyword in ["properties", "$defs", "definitions", "patternProperties"] {
        if let Some(subschemas) = object.get_mut(keyword).and_then(Value::as_object_mut) {
            for subschema in subschemas.values_mut() {
                visit_schemas(subschema, visit);
            }
        }
    }
    for keyword in ["anyOf", "allOf", "oneOf", "prefixItems"] {
        if let Some(subschemas) = object.get_mut(keyword).and_then(Value::as_array_mut) {
            for subschema in subschemas {
                visit_schemas(subschema, visit);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::*;
    use super::*;

    fn findings_for(value: Value) -> Vec<(String, String)> {
        let mut report = Report::new("test");
        check(
            &[Manifest {
                component: "kafka".into(),
                value,
            }],
            &mut report,
        );
        report
            .into_sorted()
            .into_iter()
            .map(|finding| (finding.field, finding.reason))
            .collect()
    }

    #[test]
    fn every_registered_kind_compiles_to_a_validator() {
        for ((api_version, kind), registered) in registry() {
            if let Err(error) = &registered.compiled().validator {
                panic!("{api_version}/{kind}: {error}");
            }
        }
    }

    #[test]
    fn every_object_of_a_valid_environment_passes() {
        for manifest in good_environment() {
            assert_eq!(
                findings_for(manifest.value.clone()),
                Vec::new(),
                "{}",
                manifest.value
            );
        }
    }

    #[test]
    fn a_misspelled_field_fails_with_a_suggestion() {
        let mut statefulset = kafka_statefulset();
        let spec = statefulset["spec"]
            .as_object_mut()
            .map(|spec| spec.remove("serviceName"));
        statefulset["spec"]["servceName"] = spec.flatten().unwrap_or_default();
        assert_eq!(
            findings_for(statefulset),
            [(
                "spec.servceName".to_owned(),
                "unknown field `servceName`; did you mean `serviceName`?".to_owned()
            )]
        );
    }

    #[test]
    fn unknown_fields_deep_in_the_pod_template_fail() {
        let mut statefulset = kafka_statefulset();
        statefulset["spec"]["template"]["spec"]["containers"][0]["resources"]["limit"] =
            json!({"cpu": "1"});
        let findings = findings_for(statefulset);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(
            findings[0].0,
            "spec.template.spec.containers[0].resources.limit"
        );
        assert_eq!(
            findings[0].1,
            "unknown field `limit`; did you mean `limits`?"
        );
    }

    #[test]
    fn unknown_fields_without_a_close_match_list_the_valid_ones() {
        let reason = unknown_field_reason("colour", &["name".to_owned(), "image".to_owned()]);
        assert_eq!(
            reason,
            "unknown field `colour`; valid fields here: name, image"
        );
    }

    #[test]
    fn wrong_types_fail() {
        let mut statefulset = kafka_statefulset();
        statefulset["spec"]["replicas"] = json!("three");
        let findings = findings_for(statefulset);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].0, "spec.replicas");
        assert!(findings[0].1.contains("integer"), "{findings:?}");
    }

    #[test]
    fn int_or_string_accepts_both_and_nothing_else() {
        for target_port in [json!(9092), json!("client")] {
            let mut service = kafka_client_service();
            service["spec"]["ports"][0]["targetPort"] = target_port;
            assert_eq!(findings_for(service), Vec::new());
        }
        let mut service = kafka_client_service();
        service["spec"]["ports"][0]["targetPort"] = json!({"name": "client"});
        let findings = findings_for(service);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].0, "spec.ports[0].targetPort");
        assert!(
            findings[0]
                .1
                .ends_with("expected an integer or a string (e.g. 8080 or a port name)"),
            "{findings:?}"
        );
    }

    #[test]
    fn quantities_are_checked_against_the_kubernetes_grammar() {
        let mut statefulset = kafka_statefulset();
        statefulset["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]
            ["storage"] = json!("10Gx");
        let findings = findings_for(statefulset);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(
            findings[0].0,
            "spec.volumeClaimTemplates[0].spec.resources.requests.storage"
        );
        assert_eq!(
            findings[0].1,
            r#""10Gx" is not valid: expected a Kubernetes quantity such as `500m`, `2`, `512Mi` or `10Gi`"#
        );
        for valid in [json!("10Gi"), json!("1e3"), json!("500m"), json!(2)] {
            let mut statefulset = kafka_statefulset();
            statefulset["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
                ["cpu"] = valid;
            assert_eq!(findings_for(statefulset), Vec::new());
        }
    }

    #[test]
    fn a_missing_name_fails() {
        let mut config_map = kafka_config_map();
        config_map["metadata"]
            .as_object_mut()
            .map(|metadata| metadata.remove("name"));
        assert_eq!(
            findings_for(config_map),
            [(
                "metadata.name".to_owned(),
                "required field is missing".to_owned()
            )]
        );
    }

    #[test]
    fn an_unknown_kind_fails_and_says_how_to_fix_it() {
        let findings = findings_for(
            json!({"apiVersion": "hivemq.com/v1", "kind": "HiveMQPlatform", "metadata": {"name": "x"}}),
        );
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].0, "kind");
        assert!(findings[0].1.starts_with(
            "no schema is registered for apiVersion `hivemq.com/v1` kind `HiveMQPlatform`"
        ));
        assert!(findings[0]
            .1
            .ends_with("register its type in compiler/src/validate/schema.rs"));
    }

    #[test]
    fn a_known_kind_under_the_wrong_api_version_names_the_right_one() {
        let mut statefulset = kafka_statefulset();
        statefulset["apiVersion"] = json!("apps/v1beta1");
        assert_eq!(
            findings_for(statefulset),
            [("kind".to_owned(), "`StatefulSet` is not served as apiVersion `apps/v1beta1`; use apiVersion `apps/v1`".to_owned())]
        );
    }

    #[test]
    fn a_typed_custom_resource_registers_with_one_line() {
        #[derive(serde::Serialize, schemars::JsonSchema)]
        #[serde(rename_all = "camelCase")]
        struct Widget {
            api_version: String,
            kind: String,
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
            size: u32,
        }
        impl Resource for Widget {
            const API_VERSION: &'static str = "example.com/v1";
            const GROUP: &'static str = "example.com";
            const KIND: &'static str = "Widget";
            const VERSION: &'static str = "v1";
            const URL_PATH_SEGMENT: &'static str = "widgets";
            type Scope = NamespaceResourceScope;
        }
        let registered = RegisteredKind {
            definition: KindSchema::of::<Widget>(),
            compiled: OnceLock::new(),
        };
        assert!(registered.definition.namespaced);
        let Ok(validator) = &registered.compiled().validator else {
            panic!("Widget schema does not compile")
        };
        let good = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "size": 3});
        assert!(validator.is_valid(&good));
        let misspelled = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "sise": 3});
        assert!(!validator.is_valid(&misspelled));
    }

    #[test]
    fn cluster_scoped_kinds_are_known_as_such() {
        assert_eq!(
            is_namespaced("storage.k8s.io/v1", "StorageClass"),
            Some(false)
        );
        assert_eq!(is_namespaced("v1", "Namespace"), Some(false));
        assert_eq!(is_namespaced("apps/v1", "StatefulSet"), Some(true));
        assert_eq!(is_namespaced("example.com/v1", "Widget"), None);
        assert_eq!(kind_is_namespaced("StorageClass"), Some(false));
        assert_eq!(kind_is_namespaced("Secret"), Some(true));
    }

    /// What the compiler really emits: typed k8s-openapi objects, serialised.
    #[test]
    fn typed_k8s_openapi_objects_pass_after_serialisation() {
        use k8s_openapi::api::core::v1::{
            Container, PodSpec, PodTemplateSpec, ResourceRequirements, ServicePort, ServiceSpec,
        };
        use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
        use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

        let labels: BTreeMap<String, String> =
            [("app.kubernetes.io/name".to_owned(), "kafka".to_owned())].into();
        let metadata = ObjectMeta {
            name: Some("kafka".into()),
            namespace: Some(NAMESPACE.into()),
            labels: Some(labels.clone()),
            ..Default::default()
        };
        let quantities = |cpu: &str, memory: &str| {
            Some(BTreeMap::from([
                ("cpu".to_owned(), Quantity(cpu.into())),
                ("memory".to_owned(), Quantity(memory.into())),
            ]))
        };
        let statefulset = apps::v1::StatefulSet {
            metadata: metadata.clone(),
            spec: Some(apps::v1::StatefulSetSpec {
                replicas: Some(3),
                service_name: Some("kafka-headless".into()),
                selector: LabelSelector {
                    match_labels: Some(labels.clone()),
                    ..Default::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels.clone()),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: "kafka".into(),
                            image: Some("apache/kafka:4.1.0".into()),
                            resources: Some(ResourceRequirements {
                                requests: quantities("500m", "1Gi"),
                                limits: quantities("2", "1Gi"),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            ..Default::default()
        };
        let service = core::v1::Service {
            metadata,
            spec: Some(ServiceSpec {
                selector: Some(labels),
                ports: Some(vec![
                    ServicePort {
                        name: Some("client".into()),
                        port: 9092,
                        target_port: Some(IntOrString::String("client".into())),
                        ..Default::default()
                    },
                    ServicePort {
                        name: Some("metrics".into()),
                        port: 9100,
                        target_port: Some(IntOrString::Int(9100)),
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            }),
            ..Default::default()
        };
        for value in [
            serde_json::to_value(&statefulset),
            serde_json::to_value(&service),
        ] {
            let Ok(value) = value else {
                panic!("serialisation failed: {value:?}")
            };
            assert_eq!(findings_for(value.clone()), Vec::new(), "{value}");
        }
    }

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("serviceName", "serviceName"), 0);
        assert_eq!(edit_distance("servceName", "serviceName"), 1);
        assert_eq!(edit_distance("limit", "limits"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
