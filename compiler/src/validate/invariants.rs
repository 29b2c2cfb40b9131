//! Platform rules that hold for every object of every environment (and the stricter ones for
//! production): HA replicas, container resources, Pod Security "restricted", and one namespace per
//! environment. Rules about one component live in its module (`ComponentHooks::invariants`).

use std::cmp::Ordering;

use serde_json::Value;

use super::path::FieldPath;
use super::pods::{items, pod_templates, Container, PodTemplate};
use super::schema::Registry;
use super::Report;
use crate::manifest::Manifest;
use crate::quantity::Quantity;

pub(super) fn check(
    objects: &[Manifest],
    production: bool,
    component_namespaces: &[String],
    tool_namespaces: &[String],
    registry: &Registry,
    report: &mut Report,
) {
    check_namespaces(
        objects,
        component_namespaces,
        tool_namespaces,
        registry,
        report,
    );
    for manifest in objects {
        if production && manifest.kind() == "StatefulSet" {
            check_production_replicas(manifest, report);
        }
    }
    for template in pod_templates(objects, registry) {
        check_pod_security(&template, report);
        for container in template.containers() {
            check_resources(template.manifest, &container, report);
            check_container_security(&template, &container, report);
        }
    }
}

fn check_production_replicas(statefulset: &Manifest, report: &mut Report) {
    // Kubernetes defaults an absent replica count to 1.
    let replicas = statefulset
        .value
        .pointer("/spec/replicas")
        .map_or(Some(1), Value::as_i64);
    if let Some(replicas) = replicas.filter(|replicas| *replicas < 2) {
        let reason = format!("a StatefulSet in production needs at least 2 replicas so it survives losing one pod; found {replicas}");
        report.object(statefulset, "spec.replicas", reason);
    }
}

/// The environment declares exactly one Namespace enforcing Pod Security restricted, and every
/// namespaced object lives in it, except in the namespaces components declare for what cannot be
/// restricted (`ComponentHooks::namespaces`), which must be rendered and state their level, and
/// the namespaces of installed tools (`ComponentHooks::tool_namespaces`), which are not rendered.
fn check_namespaces(
    objects: &[Manifest],
    component_namespaces: &[String],
    tool_namespaces: &[String],
    registry: &Registry,
    report: &mut Report,
) {
    let is_components = |name: &str| {
        component_namespaces
            .iter()
            .chain(tool_namespaces)
            .any(|own| own == name)
    };
    for own in component_namespaces {
        let namespace = objects
            .iter()
            .find(|manifest| manifest.kind() == "Namespace" && manifest.name() == own);
        match namespace {
            None => report.model(
                "namespace",
                format!("a component places objects in namespace `{own}` but does not render it"),
            ),
            Some(namespace) => {
                let field =
                    FieldPath::of("metadata.labels").key("pod-security.kubernetes.io/enforce");
                if namespace
                    .value
                    .pointer("/metadata/labels/pod-security.kubernetes.io~1enforce")
                    .is_none()
                {
                    report.object(
                        namespace,
                        field,
                        "must state the Pod Security level the API server enforces here",
                    );
                }
            }
        }
    }
    let namespaces: Vec<&Manifest> = objects
        .iter()
        .filter(|manifest| manifest.kind() == "Namespace" && !is_components(manifest.name()))
        .collect();
    let declared = match namespaces.as_slice() {
        [] => {
            report.model("namespace", "the environment renders no Namespace object; it must declare the one namespace its objects live in");
            None
        }
        [namespace] => Some(namespace.name()),
        [first, others @ ..] => {
            for other in others {
                let reason = format!("the environment already declares namespace `{}`; an environment has exactly one", first.name());
                report.object(other, "metadata.name", reason);
            }
            Some(first.name())
        }
    };
    for namespace in &namespaces {
        let enforce = namespace
            .value
            .pointer("/metadata/labels/pod-security.kubernetes.io~1enforce")
            .and_then(Value::as_str);
        if enforce != Some("restricted") {
            let field = FieldPath::of("metadata.labels").key("pod-security.kubernetes.io/enforce");
            let reason = format!(
                "must be `restricted` so the API server enforces Pod Security; found {}",
                enforce.map_or("nothing".to_owned(), |value| format!("`{value}`"))
            );
            report.object(namespace, field, reason);
        }
    }
    let Some(declared) = declared else { return };
    for manifest in objects {
        // Unknown kinds are reported by the schema check; their scope is unknown.
        if registry.is_namespaced(manifest.api_version(), manifest.kind()) != Some(true) {
            continue;
        }
        match manifest.namespace() {
            Some(namespace) if namespace == declared || is_components(namespace) => {}
            found => {
                let found = found.map_or("none".to_owned(), |namespace| format!("`{namespace}`"));
                report.object(
                    manifest,
                    "metadata.namespace",
                    format!("must be the environment's namespace `{declared}`; found {found}"),
                );
            }
        }
    }
}

fn check_resources(workload: &Manifest, container: &Container, report: &mut Report) {
    let resources_path = container.path.key("resources");
    let resources = container.value.get("resources");
    for resource in ["cpu", "memory"] {
        let request = parsed_resource(
            workload,
            resources,
            &resources_path,
            "requests",
            resource,
            report,
        );
        let limit = parsed_resource(
            workload,
            resources,
            &resources_path,
            "limits",
            resource,
            report,
        );
        if let (Some((request_text, request)), Some((limit_text, limit))) = (request, limit) {
            if request.compare(limit) == Ordering::Greater {
                let reason = format!("request `{request_text}` exceeds limit `{limit_text}`; the request must be at most the limit");
                report.object(
                    workload,
                    resources_path.key("requests").key(resource),
                    reason,
                );
            }
        }
    }
}

/// The quantity at `resources.<section>.<resource>`, reporting it when missing or malformed.
fn parsed_resource(
    workload: &Manifest,
    resources: Option<&Value>,
    resources_path: &FieldPath,
    section: &str,
    resource: &str,
    report: &mut Report,
) -> Option<(String, Quantity)> {
    let field = resources_path.key(section).key(resource);
    let value = resources
        .and_then(|resources| resources.get(section))
        .and_then(|section| section.get(resource));
    let text = match value {
        None => {
            let reason = format!(
                "missing: every container needs {resource} requests and limits (e.g. {})",
                example(resource)
            );
            report.object(workload, field, reason);
            return None;
        }
        Some(Value::String(text)) => text.clone(),
        // YAML may carry plain numbers (`cpu: 2`); they are quantities too.
        Some(Value::Number(number)) => number.to_string(),
        // A wrong type is a schema finding already.
        Some(_) => return None,
    };
    match Quantity::parse(&text) {
        Ok(quantity) if quantity.is_negative() => {
            report.object(
                workload,
                field,
                format!("`{text}` is negative; resources must be zero or more"),
            );
            None
        }
        Ok(quantity) => Some((text, quantity)),
        Err(error) => {
            report.object(workload, field, error.to_string());
            None
        }
    }
}

fn example(resource: &str) -> &'static str {
    if resource == "cpu" {
        "`cpu: 100m`"
    } else {
        "`memory: 256Mi`"
    }
}

/// Volume types Pod Security "restricted" allows.
const RESTRICTED_VOLUME_TYPES: [&str; 8] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Pod-level rules of Pod Security "restricted".
fn check_pod_security(template: &PodTemplate, report: &mut Report) {
    let (manifest, spec, spec_path) = (template.manifest, template.spec, &template.spec_path);
    for host_namespace in ["hostNetwork", "hostPID", "hostIPC"] {
        if spec.get(host_namespace) == Some(&Value::Bool(true)) {
            report.object(manifest, spec_path.key(host_namespace), "sharing the host's namespaces is not allowed under Pod Security restricted; remove it or set false");
        }
    }
    if spec
        .pointer("/securityContext/runAsUser")
        .and_then(Value::as_i64)
        == Some(0)
    {
        report.object(
            manifest,
            spec_path.key("securityContext").key("runAsUser"),
            "running as root (UID 0) is not allowed; use a non-zero UID",
        );
    }
    for (index, volume) in items(spec.get("volumes")) {
        let Some(volume) = volume.as_object() else {
            continue;
        };
        for source in volume.keys().filter(|key| *key != "name") {
            if !RESTRICTED_VOLUME_TYPES.contains(&source.as_str()) {
                let reason = format!(
                    "`{source}` volumes are not allowed under Pod Security restricted (allowed: {})",
                    RESTRICTED_VOLUME_TYPES.join(", ")
                );
                report.object(
                    manifest,
                    spec_path.key("volumes").index(index).key(source),
                    reason,
                );
            }
        }
    }
}

/// Container-level rules of Pod Security "restricted", plus our read-only root filesystem rule.
/// `runAsNonRoot`, `runAsUser` and `seccompProfile` may be set on the pod and overridden per container.
fn check_container_security(template: &PodTemplate, container: &Container, report: &mut Report) {
    let manifest = template.manifest;
    let context = container.value.get("securityContext");
    let context_path = container.path.key("securityContext");
    let container_setting = |pointer: &str| context.and_then(|context| context.pointer(pointer));
    let effective = |pointer: &str| {
        container_setting(pointer).or_else(|| {
            template
                .spec
                .get("securityContext")
                .and_then(|context| context.pointer(pointer))
        })
    };

    if effective("/runAsNonRoot") != Some(&Value::Bool(true)) {
        report.object(
            manifest,
            context_path.key("runAsNonRoot"),
            "must be true (on the container or the pod) under Pod Security restricted",
        );
    }
    if container_setting("/runAsUser").and_then(Value::as_i64) == Some(0) {
        report.object(
            manifest,
            context_path.key("runAsUser"),
            "running as root (UID 0) is not allowed; use a non-zero UID",
        );
    }
    match effective("/seccompProfile/type").and_then(Value::as_str) {
        Some("RuntimeDefault" | "Localhost") => {}
        found => {
            let found = found.map_or("nothing".to_owned(), |found| format!("`{found}`"));
            let reason = format!("seccompProfile.type must be RuntimeDefault (or Localhost), on the container or the pod; found {found}");
            report.object(
                manifest,
                context_path.key("seccompProfile").key("type"),
                reason,
            );
        }
    }
    if container_setting("/allowPrivilegeEscalation") != Some(&Value::Bool(false)) {
        report.object(
            manifest,
            context_path.key("allowPrivilegeEscalation"),
            "must be false under Pod Security restricted",
        );
    }
    if container_setting("/privileged") == Some(&Value::Bool(true)) {
        report.object(
            manifest,
            context_path.key("privileged"),
            "privileged containers are not allowed; remove it or set false",
        );
    }
    if container_setting("/readOnlyRootFilesystem") != Some(&Value::Bool(true)) {
        report.object(
            manifest,
            context_path.key("readOnlyRootFilesystem"),
            "must be true; mount an emptyDir where the program needs to write",
        );
    }
    let drops_all = items(container_setting("/capabilities/drop"))
        .any(|(_, capability)| capability.as_str() == Some("ALL"));
    if !drops_all {
        report.object(
            manifest,
            context_path.key("capabilities").key("drop"),
            "must include ALL under Pod Security restricted",
        );
    }
    for (index, capability) in items(container_setting("/capabilities/add")) {
        if capability.as_str() != Some("NET_BIND_SERVICE") {
            let path = context_path.key("capabilities").key("add").index(index);
            report.object(
                manifest,
                path,
                format!("adding {capability} is not allowed; only NET_BIND_SERVICE may be added"),
            );
        }
    }
    for (index, port) in items(container.value.get("ports")) {
        if port
            .get("hostPort")
            .and_then(Value::as_i64)
            .is_some_and(|host_port| host_port != 0)
        {
            let path = container.path.key("ports").index(index).key("hostPort");
            report.object(manifest, path, "host ports are not allowed under Pod Security restricted; expose the port through a Service");
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::schema::registry;
    use super::super::testing::*;
    use super::*;

    fn findings(objects: &[Manifest], production: bool) -> Vec<(String, String, String)> {
        // The namespace the storage component declares for its provisioner, when rendered.
        let own: Vec<String> = objects
            .iter()
            .filter(|object| object.component == "storage" && object.kind() == "Namespace")
            .map(|object| object.name().to_owned())
            .collect();
        // Argo CD's and Flux's namespaces, which the gitops component's objects live in.
        let tools: Vec<String> = objects
            .iter()
            .filter(|object| object.component == "gitops")
            .filter_map(|object| object.namespace().map(str::to_owned))
            .collect();
        findings_of("prod", |report| {
            check(objects, production, &own, &tools, registry(), report)
        })
    }

    /// The single finding for the kafka StatefulSet after `change`.
    fn kafka_finding(change: impl FnOnce(&mut Vec<Manifest>)) -> (String, String) {
        let (_, mut objects) = built("prod");
        change(&mut objects);
        let mut found = findings(&objects, true);
        assert_eq!(found.len(), 1, "{found:#?}");
        let (object, field, reason) = found.remove(0);
        assert_eq!(object, "kafka/StatefulSet/kafka");
        (field, reason)
    }

    fn kafka_finding_after_setting(pointer: &str, value: Value) -> (String, String) {
        kafka_finding(|objects| set(objects, "StatefulSet", "kafka", pointer, value))
    }

    const CONTAINER: &str = "/spec/template/spec/containers/0";

    #[test]
    fn what_the_compiler_builds_meets_every_invariant() {
        for (environment, production) in [("dev", false), ("prod", true)] {
            let (_, objects) = built(environment);
            assert_eq!(findings(&objects, production), Vec::new(), "{environment}");
        }
    }

    #[test]
    fn stateful_components_need_two_replicas_in_production_only() {
        let (field, reason) = kafka_finding_after_setting("/spec/replicas", json!(1));
        assert_eq!(field, "spec.replicas");
        assert!(reason.ends_with("found 1"), "{reason}");
        let (_, reason) =
            kafka_finding(|objects| remove(objects, "StatefulSet", "kafka", "/spec/replicas"));
        assert!(
            reason.ends_with("found 1"),
            "absent replicas default to 1: {reason}"
        );
        let objects = changed("StatefulSet", "kafka", "/spec/replicas", json!(1));
        assert_eq!(findings(&objects, false), Vec::new());
    }

    #[test]
    fn every_container_needs_cpu_and_memory_requests_and_limits() {
        let (field, reason) = kafka_finding(|objects| {
            remove(
                objects,
                "StatefulSet",
                "kafka",
                &format!("{CONTAINER}/resources/limits/memory"),
            )
        });
        assert_eq!(
            field,
            "spec.template.spec.containers[0].resources.limits.memory"
        );
        assert_eq!(
            reason,
            "missing: every container needs memory requests and limits (e.g. `memory: 256Mi`)"
        );

        // Init containers too.
        let mut objects = changed(
            "StatefulSet",
            "ehs-bridge",
            "/spec/template/spec/initContainers",
            json!([{"name": "wait", "image": "busybox"}]),
        );
        remove(
            &mut objects,
            "StatefulSet",
            "ehs-bridge",
            "/spec/template/spec/securityContext",
        );
        let fields: Vec<String> = findings(&objects, true)
            .into_iter()
            .map(|(_, field, _)| field)
            .filter(|field| field.contains(".resources."))
            .collect();
        let prefix = "spec.template.spec.initContainers[0].resources";
        assert_eq!(
            fields,
            [
                format!("{prefix}.limits.cpu"),
                format!("{prefix}.limits.memory"),
                format!("{prefix}.requests.cpu"),
                format!("{prefix}.requests.memory")
            ]
        );
    }

    #[test]
    fn requests_may_not_exceed_limits_in_any_notation() {
        let (field, reason) = kafka_finding_after_setting(
            &format!("{CONTAINER}/resources/requests/memory"),
            json!("4.5Gi"),
        );
        assert_eq!(
            field,
            "spec.template.spec.containers[0].resources.requests.memory"
        );
        assert_eq!(
            reason,
            "request `4.5Gi` exceeds limit `4Gi`; the request must be at most the limit"
        );
        let (_, reason) = kafka_finding_after_setting(
            &format!("{CONTAINER}/resources/requests/cpu"),
            json!("2001m"),
        );
        assert_eq!(
            reason,
            "request `2001m` exceeds limit `2`; the request must be at most the limit"
        );
        // Equal values written differently are fine.
        for (request, limit) in [("2000m", "2"), ("1024Mi", "1Gi"), ("2e0", "2000m")] {
            let (_, mut objects) = built("prod");
            let resource = if request.ends_with('i') {
                "memory"
            } else {
                "cpu"
            };
            set(
                &mut objects,
                "StatefulSet",
                "kafka",
                &format!("{CONTAINER}/resources/requests/{resource}"),
                json!(request),
            );
            set(
                &mut objects,
                "StatefulSet",
                "kafka",
                &format!("{CONTAINER}/resources/limits/{resource}"),
                json!(limit),
            );
            assert_eq!(findings(&objects, true), Vec::new(), "{request} vs {limit}");
        }
        let objects = changed(
            "StatefulSet",
            "kafka",
            &format!("{CONTAINER}/resources/limits/cpu"),
            json!(2),
        );
        assert_eq!(
            findings(&objects, true),
            Vec::new(),
            "numbers are quantities too"
        );
    }

    #[test]
    fn invalid_or_negative_quantities_are_reported() {
        let (field, reason) = kafka_finding_after_setting(
            &format!("{CONTAINER}/resources/limits/memory"),
            json!("1Gx"),
        );
        assert_eq!(
            field,
            "spec.template.spec.containers[0].resources.limits.memory"
        );
        assert!(
            reason.starts_with("`1Gx` has the unknown suffix `Gx`"),
            "{reason}"
        );
        let (_, reason) = kafka_finding_after_setting(
            &format!("{CONTAINER}/resources/requests/cpu"),
            json!("-1"),
        );
        assert_eq!(reason, "`-1` is negative; resources must be zero or more");
    }

    #[test]
    fn pod_security_restricted_is_enforced_per_container() {
        let cases: [(&str, Value, &str); 8] = [
            (
                "/securityContext/allowPrivilegeEscalation",
                json!(true),
                "securityContext.allowPrivilegeEscalation",
            ),
            (
                "/securityContext/readOnlyRootFilesystem",
                json!(false),
                "securityContext.readOnlyRootFilesystem",
            ),
            (
                "/securityContext/capabilities/drop",
                json!(["NET_RAW"]),
                "securityContext.capabilities.drop",
            ),
            (
                "/securityContext/capabilities/add",
                json!(["NET_BIND_SERVICE", "SYS_ADMIN"]),
                "securityContext.capabilities.add[1]",
            ),
            (
                "/securityContext/privileged",
                json!(true),
                "securityContext.privileged",
            ),
            (
                "/securityContext/runAsNonRoot",
                json!(false),
                "securityContext.runAsNonRoot",
            ),
            (
                "/securityContext/seccompProfile/type",
                json!("Unconfined"),
                "securityContext.seccompProfile.type",
            ),
            ("/ports/0/hostPort", json!(9092), "ports[0].hostPort"),
        ];
        for (pointer, value, field) in cases {
            let (found, _) = kafka_finding(|objects| {
                set(
                    objects,
                    "StatefulSet",
                    "kafka",
                    &format!("{CONTAINER}{pointer}"),
                    value,
                )
            });
            assert_eq!(found, format!("spec.template.spec.containers[0].{field}"));
        }
        let (found, _) = kafka_finding_after_setting(
            &format!("{CONTAINER}/securityContext/runAsUser"),
            json!(0),
        );
        assert_eq!(
            found,
            "spec.template.spec.containers[0].securityContext.runAsUser"
        );
    }

    #[test]
    fn pod_level_settings_apply_to_every_container_unless_overridden() {
        // Set only on the pod, the settings hold for the container.
        let (_, mut objects) = built("prod");
        for setting in ["runAsNonRoot", "seccompProfile"] {
            remove(
                &mut objects,
                "StatefulSet",
                "kafka",
                &format!("{CONTAINER}/securityContext/{setting}"),
            );
        }
        assert_eq!(findings(&objects, true), Vec::new());
        // Set nowhere, the container lacks them.
        remove(
            &mut objects,
            "StatefulSet",
            "kafka",
            "/spec/template/spec/securityContext",
        );
        let fields: Vec<String> = findings(&objects, true)
            .into_iter()
            .map(|(_, field, _)| field)
            .collect();
        assert_eq!(
            fields,
            [
                "spec.template.spec.containers[0].securityContext.runAsNonRoot",
                "spec.template.spec.containers[0].securityContext.seccompProfile.type"
            ]
        );
        // A container's own setting overrides the pod's.
        let objects = changed(
            "StatefulSet",
            "kafka",
            &format!("{CONTAINER}/securityContext/runAsNonRoot"),
            json!(false),
        );
        assert_eq!(
            findings(&objects, true)[0].1,
            "spec.template.spec.containers[0].securityContext.runAsNonRoot"
        );
    }

    #[test]
    fn host_namespaces_root_and_host_path_volumes_are_rejected() {
        let (field, _) =
            kafka_finding_after_setting("/spec/template/spec/hostNetwork", json!(true));
        assert_eq!(field, "spec.template.spec.hostNetwork");
        let (field, _) = kafka_finding_after_setting("/spec/template/spec/hostPID", json!(true));
        assert_eq!(field, "spec.template.spec.hostPID");
        let (field, _) =
            kafka_finding_after_setting("/spec/template/spec/securityContext/runAsUser", json!(0));
        assert_eq!(field, "spec.template.spec.securityContext.runAsUser");
        let (field, reason) = kafka_finding(|objects| {
            set(
                objects,
                "StatefulSet",
                "kafka",
                "/spec/template/spec/volumes/1",
                json!({"name": "tmp", "hostPath": {"path": "/tmp"}}),
            );
        });
        assert_eq!(field, "spec.template.spec.volumes[1].hostPath");
        assert!(
            reason.starts_with("`hostPath` volumes are not allowed"),
            "{reason}"
        );
    }

    #[test]
    fn every_namespaced_object_lives_in_the_declared_namespace() {
        let mut objects = changed(
            "ConfigMap",
            "kafka-config",
            "/metadata/namespace",
            json!("default"),
        );
        remove(&mut objects, "Service", "kafka", "/metadata/namespace");
        let found = findings(&objects, true);
        assert_eq!(
            found,
            [
                (
                    "kafka/ConfigMap/kafka-config".to_owned(),
                    "metadata.namespace".to_owned(),
                    "must be the environment's namespace `ehs-prod`; found `default`".to_owned()
                ),
                (
                    "kafka/Service/kafka".to_owned(),
                    "metadata.namespace".to_owned(),
                    "must be the environment's namespace `ehs-prod`; found none".to_owned()
                ),
            ]
        );
        // Cluster-scoped objects carry no namespace.
        let (_, objects) = built("prod");
        let namespace = objects.iter().find(|object| object.kind() == "Namespace");
        assert_eq!(namespace.and_then(Manifest::namespace), None);
        assert_eq!(findings(&objects, true), Vec::new());
    }

    #[test]
    fn exactly_one_namespace_with_pod_security_enforced() {
        let (_, mut objects) = built("prod");
        objects.retain(|manifest| manifest.component != "namespace");
        let found = findings(&objects, true);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(
            (found[0].0.as_str(), found[0].1.as_str()),
            ("environment", "namespace")
        );

        let (_, mut objects) = built("prod");
        let mut second = objects
            .iter()
            .find(|object| object.component == "namespace")
            .cloned()
            .unwrap();
        second.value["metadata"]["name"] = json!("ehs-prod-2");
        objects.push(second);
        let found = findings(&objects, true);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].0, "namespace/Namespace/ehs-prod-2");

        let objects = changed(
            "Namespace",
            "ehs-prod",
            "/metadata/labels/pod-security.kubernetes.io~1enforce",
            json!("baseline"),
        );
        let found = findings(&objects, true);
        assert_eq!(
            found,
            [(
                "namespace/Namespace/ehs-prod".to_owned(),
                "metadata.labels[\"pod-security.kubernetes.io/enforce\"]".to_owned(),
                "must be `restricted` so the API server enforces Pod Security; found `baseline`"
                    .to_owned()
            )]
        );
    }
}
