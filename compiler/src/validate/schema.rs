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
use k8s_openapi::{NamespaceResourceScope, Resource};
use schemars::JsonSchema;
use serde_json::{json, Map, Value};

use super::path::FieldPath;
use super::Report;
use crate::components::Component;
use crate::manifest::Manifest;

/// How to check one kind: its identity (API group, version, kind), scope and schema. Components
/// declare theirs in `ComponentHooks::kinds`.
pub struct KindSchema {
    id: KindId,
    namespaced: bool,
    /// Whether an operator's CustomResourceDefinition defines it (so `--crds` checks it), as
    /// opposed to a kind the API server itself serves.
    custom: bool,
    generate: fn() -> schemars::Schema,
    pods: Option<PodTemplatePaths>,
}

/// Where a custom resource that makes its operator create pods keeps their template, the
/// workload's selector and per-pod volume claim templates, as dotted paths of plain keys (e.g.
/// `spec.statefulSet.spec.template`). With it, the pod checks (Pod Security, resources, selectors,
/// references to ConfigMaps, Secrets and claims) cover those pods like a built-in workload's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodTemplatePaths {
    pub template: &'static str,
    pub selector: &'static str,
    pub claims: Option<&'static str>,
}

impl KindSchema {
    /// The schema of `T`: any type implementing `k8s_openapi::Resource` and
    /// `schemars::JsonSchema` (k8s-openapi types, and typed custom resources implementing both).
    pub fn of<T: Resource + JsonSchema + 'static>() -> Self {
        Self {
            id: KindId {
                group: T::GROUP,
                kind: T::KIND,
                version: T::VERSION,
            },
            namespaced: std::any::TypeId::of::<T::Scope>()
                == std::any::TypeId::of::<NamespaceResourceScope>(),
            // k8s-openapi holds exactly the kinds the API server serves; any other type is a
            // custom resource.
            custom: !std::any::type_name::<T>().starts_with("k8s_openapi::"),
            generate: || schemars::SchemaGenerator::default().into_root_schema_for::<T>(),
            pods: None,
        }
    }

    /// Declares where this custom resource's pod template is; see [`PodTemplatePaths`].
    pub fn with_pod_template(mut self, paths: PodTemplatePaths) -> Self {
        self.pods = Some(paths);
        self
    }
}

/// A kind's identity. Kind names are unique only within an API group (Gateway API's `Gateway`
/// and Istio's `Gateway` are different kinds), so the group is part of the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct KindId {
    /// `""` for the core group (`apiVersion: v1`).
    group: &'static str,
    kind: &'static str,
    version: &'static str,
}

impl KindId {
    fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// `(group, version)` of an `apiVersion`: `apps/v1` → `("apps", "v1")`, `v1` → `("", "v1")`.
fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

/// A kind's schema, tightened, and its validator, built on first use.
struct CompiledKind {
    schema: Value,
    validator: Result<Validator, String>,
}

struct RegisteredKind {
    definition: KindSchema,
    /// The components that declare it; only their objects may have it.
    components: Vec<&'static str>,
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

/// The kinds objects may have, keyed by group, kind and version, with who declares them.
/// Validators are compiled on first use of a kind and cached.
pub(super) struct Registry {
    kinds: BTreeMap<KindId, RegisteredKind>,
}

impl Registry {
    pub(super) fn new(components: &[Component]) -> Self {
        let mut kinds: BTreeMap<KindId, RegisteredKind> = BTreeMap::new();
        for component in components {
            for definition in (component.kinds)() {
                kinds
                    .entry(definition.id)
                    .or_insert_with(|| RegisteredKind {
                        definition,
                        components: Vec::new(),
                        compiled: OnceLock::new(),
                    })
                    .components
                    .push(component.name);
            }
        }
        Self { kinds }
    }

    fn get(&self, api_version: &str, kind: &str) -> Option<&RegisteredKind> {
        let (group, version) = split_api_version(api_version);
        self.kinds
            .iter()
            .find(|(id, _)| id.group == group && id.kind == kind && id.version == version)
            .map(|(_, registered)| registered)
    }

    /// Where the pod template of a kind is, if its component declared it.
    pub(super) fn pod_template_paths(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Option<PodTemplatePaths> {
        self.get(api_version, kind)
            .and_then(|registered| registered.definition.pods)
    }

    /// Whether this kind is a custom resource; `None` for kinds no component declares.
    pub(super) fn is_custom(&self, api_version: &str, kind: &str) -> Option<bool> {
        self.get(api_version, kind)
            .map(|registered| registered.definition.custom)
    }

    /// Whether objects of this kind live in a namespace; `None` for kinds no component declares.
    pub(super) fn is_namespaced(&self, api_version: &str, kind: &str) -> Option<bool> {
        self.get(api_version, kind)
            .map(|registered| registered.definition.namespaced)
    }
}

/// The registry of every registered component's kinds.
pub(super) fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry::new(crate::components::ALL))
}

pub(super) fn check(objects: &[Manifest], registry: &Registry, report: &mut Report) {
    for manifest in objects {
        check_object(manifest, registry, report);
    }
}

fn check_object(manifest: &Manifest, registry: &Registry, report: &mut Report) {
    let (api_version, kind) = (manifest.api_version(), manifest.kind());
    let Some(registered) = registry.get(api_version, kind) else {
        let reason = unknown_kind_reason(registry, &manifest.component, api_version, kind);
        report.object(manifest, "kind", reason);
        return;
    };
    if !registered.components.contains(&manifest.component.as_str()) {
        let reason = format!(
            "component `{}` renders apiVersion `{api_version}` kind `{kind}` but does not \
             declare it; add it to `kinds` in its hooks (compiler/src/components/{}.rs)",
            manifest.component, manifest.component
        );
        report.object(manifest, "kind", reason);
        return;
    }
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
    report_errors(manifest, validator, &compiled.schema, report);
}

/// Reports every way `manifest` fails `validator`, compiled from `schema`: unknown fields with
/// the valid ones (or the closest), missing required fields, values of the wrong form.
pub(super) fn report_errors(
    manifest: &Manifest,
    validator: &Validator,
    schema: &Value,
    report: &mut Report,
) {
    for error in validator.iter_errors(&manifest.value) {
        let segments: Vec<Segment> = error
            .instance_path()
            .segments()
            .map(Segment::from)
            .collect();
        let path = field_path(&segments);
        match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let known = known_fields(schema, &segments);
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
                let reason = match schema_at(schema, &segments)
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

fn unknown_kind_reason(
    registry: &Registry,
    component: &str,
    api_version: &str,
    kind: &str,
) -> String {
    let (group, _) = split_api_version(api_version);
    let same_kind = |same_group: bool| -> Vec<String> {
        registry
            .kinds
            .keys()
            .filter(|id| id.kind == kind && (id.group == group) == same_group)
            .map(KindId::api_version)
            .collect()
    };
    if let Some(served) = same_kind(true).first() {
        return format!(
            "`{kind}` is not served as apiVersion `{api_version}`; use apiVersion `{served}`"
        );
    }
    let elsewhere = same_kind(false);
    let other_groups = if elsewhere.is_empty() {
        String::new()
    } else {
        format!(
            " (a different `{kind}` is declared as {})",
            elsewhere.join(", ")
        )
    };
    format!(
        "no component declares apiVersion `{api_version}` kind `{kind}`{other_groups}, so it \
         cannot be checked; declare it in `kinds` of the hooks in \
         compiler/src/components/{component}.rs"
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

/// Makes a generated schema as strict as the API server.
fn tighten(root: &mut Value) {
    if let Some(definitions) = root.get_mut("$defs").and_then(Value::as_object_mut) {
        for (name, definition) in definitions.iter_mut() {
            if name.ends_with(".Quantity") {
                *definition = json!({
                    EXPECTED_KEY: "a Kubernetes quantity such as `500m`, `2`, `512Mi` or `10Gi`",
                    "anyOf": [{"type": "number"}, {"type": "string", "pattern": crate::quantity::PATTERN}],
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

/// Sets `additionalProperties: false` on every object schema that lists its properties, unless
/// it says `x-kubernetes-preserve-unknown-fields` (CRD schemas do, where any field is fine).
pub(super) fn forbid_unknown_fields(schema: &mut Value) {
    visit_schemas(schema, &mut |schema| {
        let open = schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
        if schema.contains_key("properties")
            && !schema.contains_key("additionalProperties")
            && !open
        {
            schema.insert("additionalProperties".into(), Value::Bool(false));
        }
    });
}

/// k8s-openapi marks int-or-string values with `x-kubernetes-int-or-string` and no type at all.
pub(super) fn constrain_int_or_string(schema: &mut Value) {
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
pub(super) fn visit_schemas(schema: &mut Value, visit: &mut dyn FnMut(&mut Map<String, Value>)) {
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

    use super::super::testing::*;
    use super::*;

    /// An object the compiler builds for production.
    fn prod_object(kind: &str, name: &str) -> Value {
        let (_, objects) = built("prod");
        let found = objects
            .into_iter()
            .find(|object| object.kind() == kind && object.name() == name);
        found.unwrap().value
    }

    fn kafka_statefulset() -> Value {
        prod_object("StatefulSet", "kafka")
    }

    /// The schema findings for `value` rendered by the kafka component.
    fn findings_for(value: Value) -> Vec<(String, String)> {
        let mut report = Report::new("test");
        check(
            &[Manifest {
                component: "kafka".into(),
                value,
            }],
            registry(),
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
        for (id, registered) in &registry().kinds {
            if let Err(error) = &registered.compiled().validator {
                panic!("{id:?}: {error}");
            }
        }
    }

    #[test]
    fn every_object_the_compiler_builds_passes() {
        for environment in ["dev", "prod"] {
            let (_, objects) = built(environment);
            let mut report = Report::new(environment);
            check(&objects, registry(), &mut report);
            assert_eq!(report.into_sorted(), Vec::new());
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
            let mut service = prod_object("Service", "kafka");
            service["spec"]["ports"][0]["targetPort"] = target_port;
            assert_eq!(findings_for(service), Vec::new());
        }
        let mut service = prod_object("Service", "kafka");
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
        let mut config_map = prod_object("ConfigMap", "kafka-config");
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
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "x"}}),
        );
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].0, "kind");
        assert!(findings[0]
            .1
            .starts_with("no component declares apiVersion `example.com/v1` kind `Widget`, so it"));
        assert!(findings[0]
            .1
            .ends_with("declare it in `kinds` of the hooks in compiler/src/components/kafka.rs"));
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

    /// Two custom resources both named `Gateway`, as Gateway API and Istio define them.
    mod gateways {
        use super::*;

        #[derive(serde::Serialize, schemars::JsonSchema)]
        #[serde(rename_all = "camelCase")]
        pub struct GatewayApi {
            api_version: String,
            kind: String,
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
            gateway_class_name: String,
        }

        impl Resource for GatewayApi {
            const API_VERSION: &'static str = "gateway.networking.k8s.io/v1";
            const GROUP: &'static str = "gateway.networking.k8s.io";
            const KIND: &'static str = "Gateway";
            const VERSION: &'static str = "v1";
            const URL_PATH_SEGMENT: &'static str = "gateways";
            type Scope = NamespaceResourceScope;
        }

        #[derive(serde::Serialize, schemars::JsonSchema)]
        #[serde(rename_all = "camelCase")]
        pub struct IstioGateway {
            api_version: String,
            kind: String,
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
            selector: BTreeMap<String, String>,
        }

        impl Resource for IstioGateway {
            const API_VERSION: &'static str = "networking.istio.io/v1";
            const GROUP: &'static str = "networking.istio.io";
            const KIND: &'static str = "Gateway";
            const VERSION: &'static str = "v1";
            const URL_PATH_SEGMENT: &'static str = "gateways";
            type Scope = k8s_openapi::ClusterResourceScope;
        }
    }

    #[test]
    fn kinds_of_the_same_name_in_different_groups_are_told_apart() {
        let component = |name, kinds| Component {
            name,
            build: |_, _| Ok(Vec::new()),
            kinds,
            invariants: |_, _, _| {},
            references: |_| Vec::new(),
            operator_created: |_| Vec::new(),
            flows: |_| Vec::new(),
            namespaces: |_| Vec::new(),
            tool_namespaces: |_| Vec::new(),
            stage: || crate::components::Stage::Clients,
        };
        let components = [
            component("gateway", || vec![KindSchema::of::<gateways::GatewayApi>()]),
            component("istio", || vec![KindSchema::of::<gateways::IstioGateway>()]),
        ];
        let registry = Registry::new(&components);
        let gateway_api = |component: &str, field: &str| Manifest {
            component: component.into(),
            value: json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                          "metadata": {"name": "g", "namespace": "ehs-prod"}, field: "x"}),
        };
        let istio = |component: &str, field: &str| Manifest {
            component: component.into(),
            value: json!({"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
                          "metadata": {"name": "g"}, field: {"istio": "ingress"}}),
        };
        let findings = |object: Manifest| {
            let mut report = Report::new("test");
            check(&[object], &registry, &mut report);
            triples(report.into_sorted())
                .into_iter()
                .map(|(_, field, reason)| (field, reason))
                .collect::<Vec<_>>()
        };
        // Each is checked against its own group's schema.
        assert_eq!(findings(gateway_api("gateway", "gatewayClassName")), []);
        assert_eq!(
            findings(gateway_api("gateway", "selector"))[0].0,
            "selector"
        );
        assert_eq!(
            findings(istio("istio", "gatewayClassName"))[0].0,
            "gatewayClassName"
        );
        // Each belongs to the component that declares it.
        assert_eq!(findings(istio("gateway", "selector"))[0].0, "kind");
        // And has its own scope.
        assert_eq!(
            registry.is_namespaced("gateway.networking.k8s.io/v1", "Gateway"),
            Some(true)
        );
        assert_eq!(
            registry.is_namespaced("networking.istio.io/v1", "Gateway"),
            Some(false)
        );
        // An unknown group names the other groups' `Gateway`s.
        let (_, reason) = findings(Manifest {
            component: "gateway".into(),
            value: json!({"apiVersion": "example.com/v1", "kind": "Gateway", "metadata": {"name": "g"}}),
        })
        .remove(0);
        assert!(
            reason.contains(
                "(a different `Gateway` is declared as gateway.networking.k8s.io/v1, networking.istio.io/v1)"
            ),
            "{reason}"
        );
    }

    #[test]
    fn cluster_scoped_kinds_are_known_as_such() {
        let registry = registry();
        assert_eq!(registry.is_namespaced("v1", "Namespace"), Some(false));
        assert_eq!(registry.is_namespaced("apps/v1", "StatefulSet"), Some(true));
        assert_eq!(registry.is_namespaced("example.com/v1", "Widget"), None);
    }

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("serviceName", "serviceName"), 0);
        assert_eq!(edit_distance("servceName", "serviceName"), 1);
        assert_eq!(edit_distance("limit", "limits"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
