//! Cross-object references within one environment: what an object names or selects must exist.
//!
//! An object "exists" when it is among the rendered objects (in the referrer's namespace, for
//! namespaced kinds) or is declared in the environment's `providedExternally`. Besides the
//! references every Kubernetes object can hold, components declare the ones only they can see
//! (`ComponentHooks::references`).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::path::FieldPath;
use super::pods::{
    items, label_selector_is_empty, label_selector_matches, lookup, pod_templates, text,
    PodTemplate,
};
use super::schema::Registry;
use super::{object_label, Reference, Report};
use crate::manifest::Manifest;
use crate::resolve::Platform;

pub(super) fn check<'a>(
    objects: &'a [Manifest],
    platform: &'a Platform,
    kinds: &Registry,
    declared: &[Reference],
    operator_created: &'a [(&'static str, String)],
    report: &mut Report,
) {
    let inventory = Inventory::new(objects, platform, kinds, operator_created);
    check_duplicates(objects, report);
    for reference in declared {
        check_declared(reference, &inventory, platform, report);
    }
    for manifest in objects {
        match manifest.kind() {
            "Service" => check_service(manifest, &inventory, report),
            "PodDisruptionBudget" => {
                check_selector_selects_pods(manifest, "spec.selector", &inventory, report)
            }
            "NetworkPolicy" => {
                check_selector_selects_pods(manifest, "spec.podSelector", &inventory, report)
            }
            "HorizontalPodAutoscaler" => check_scale_target(manifest, &inventory, report),
            "RoleBinding" => check_role_binding(manifest, &inventory, report),
            "PersistentVolumeClaim" => check_storage_class(
                manifest,
                &FieldPath::of("spec"),
                &manifest.value["spec"],
                &inventory,
                report,
            ),
            _ => {}
        }
    }
    for template in &inventory.templates {
        check_workload_selector(template, report);
        check_pod_references(template, &inventory, report);
        for (path, claim) in template.claim_templates() {
            check_storage_class(
                template.manifest,
                &path.key("spec"),
                &claim["spec"],
                &inventory,
                report,
            );
        }
        if template.manifest.kind() == "StatefulSet" {
            check_statefulset(template, &inventory, report);
        }
    }
}

/// Everything a reference can resolve to.
struct Inventory<'a> {
    objects: &'a [Manifest],
    external: BTreeSet<(&'a str, &'a str)>,
    templates: Vec<PodTemplate<'a>>,
}

impl<'a> Inventory<'a> {
    fn new(
        objects: &'a [Manifest],
        platform: &'a Platform,
        kinds: &Registry,
        operator_created: &'a [(&'static str, String)],
    ) -> Self {
        // What an operator creates from a rendered custom resource exists once it is applied,
        // exactly as what the cluster provides does.
        let external = platform
            .environment
            .provided_externally
            .iter()
            .map(|object| (object.kind.as_str(), object.name.as_ref()))
            .chain(
                operator_created
                    .iter()
                    .map(|(kind, name)| (*kind, name.as_str())),
            )
            .collect();
        Self {
            objects,
            external,
            templates: pod_templates(objects, kinds),
        }
    }

    /// The rendered object of `kind` named `name` in `namespace` (any namespace for cluster-scoped kinds).
    fn find(&self, kind: &str, namespace: Option<&str>, name: &str) -> Option<&'a Manifest> {
        self.objects.iter().find(|object| {
            object.kind() == kind
                && object.name() == name
                && (object.namespace().is_none() || object.namespace() == namespace)
        })
    }

    fn exists(&self, kind: &str, namespace: Option<&str>, name: &str) -> bool {
        self.external.contains(&(kind, name)) || self.find(kind, namespace, name).is_some()
    }

    fn templates_in(&self, namespace: Option<&'a str>) -> impl Iterator<Item = &PodTemplate<'a>> {
        self.templates
            .iter()
            .filter(move |template| template.namespace() == namespace)
    }

    /// Reports `kind/name` at `field` unless it exists.
    fn require(
        &self,
        referrer: &Manifest,
        field: FieldPath,
        kind: &str,
        name: &str,
        report: &mut Report,
    ) {
        if name.is_empty() {
            report.object(
                referrer,
                field,
                format!("names no {kind}: set the name of an existing {kind}"),
            );
        } else if !self.exists(kind, referrer.namespace(), name) {
            report.object(
                referrer,
                field,
                missing_reason(kind, name, referrer.namespace()),
            );
        }
    }
}

/// A reference a component declared: reported on its referrer, or on the model when the
/// referrer is not rendered.
fn check_declared(
    reference: &Reference,
    inventory: &Inventory,
    platform: &Platform,
    report: &mut Report,
) {
    let namespace = platform.environment.namespace.as_ref();
    let (kind, name) = (reference.to.0, reference.to.1.as_str());
    if inventory.exists(kind, Some(namespace), name) {
        return;
    }
    let reason = missing_reason(kind, name, Some(namespace));
    match inventory.find(reference.from.0, Some(namespace), &reference.from.1) {
        Some(referrer) => report.object(referrer, &reference.field, reason),
        None => report.model(&reference.field, reason),
    }
}

/// Cluster-scoped kinds the generic checks and `providedExternally` may name, so a message about
/// a missing one does not send the reader looking in a namespace.
const CLUSTER_SCOPED: [&str; 6] = [
    "StorageClass",
    "ClusterRole",
    "PriorityClass",
    "Namespace",
    "PersistentVolume",
    "IngressClass",
];

fn missing_reason(kind: &str, name: &str, namespace: Option<&str>) -> String {
    let place = namespace
        .filter(|_| !CLUSTER_SCOPED.contains(&kind))
        .map(|namespace| format!(" in namespace `{namespace}`"))
        .unwrap_or_default();
    format!(
        "{kind} `{name}` does not exist{place}: render it in this environment or declare it as provided externally"
    )
}

fn describe_labels(labels: &Map<String, Value>) -> String {
    let pairs: Vec<String> = labels
        .iter()
        .map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or_default()))
        .collect();
    format!("{{{}}}", pairs.join(", "))
}

/// Two objects with the same kind, namespace and name would overwrite each other on apply.
fn check_duplicates(objects: &[Manifest], report: &mut Report) {
    let mut seen = BTreeSet::new();
    for manifest in objects {
        let identity = (
            manifest.api_version(),
            manifest.kind(),
            manifest.namespace(),
            manifest.name(),
        );
        if !seen.insert(identity) {
            let reason = format!(
                "another {} named `{}` is already rendered in this environment; names must be unique per kind and namespace",
                manifest.kind(),
                manifest.name()
            );
            report.object(manifest, "metadata.name", reason);
        }
    }
}

fn check_service(service: &Manifest, inventory: &Inventory, report: &mut Report) {
    let spec = &service.value["spec"];
    // ExternalName Services and Services without a selector (manually managed endpoints)
    // legitimately select no pods.
    let Some(selector) = spec
        .get("selector")
        .and_then(Value::as_object)
        .filter(|selector| !selector.is_empty())
    else {
        return;
    };
    if spec.get("type").and_then(Value::as_str) == Some("ExternalName") {
        return;
    }
    let selected: Vec<&PodTemplate> = inventory
        .templates_in(service.namespace())
        .filter(|template| template.matched_by_labels(selector))
        .collect();
    if selected.is_empty() {
        let candidates: Vec<String> = inventory
            .templates_in(service.namespace())
            .map(|template| {
                format!(
                    "{} has {}",
                    object_label(template.manifest),
                    describe_labels(&template.labels)
                )
            })
            .collect();
        let reason = format!(
            "selector {} matches the pod labels of no workload in this namespace{}",
            describe_labels(selector),
            if candidates.is_empty() {
                String::new()
            } else {
                format!("; {}", candidates.join("; "))
            }
        );
        report.object(service, "spec.selector", reason);
        return;
    }
    for (index, port) in items(spec.get("ports")) {
        let Some(port_name) = port.get("targetPort").and_then(Value::as_str) else {
            continue;
        };
        let field = FieldPath::of("spec")
            .key("ports")
            .index(index)
            .key("targetPort");
        let (serving, not_serving): (Vec<&&PodTemplate>, Vec<&&PodTemplate>) = selected
            .iter()
            .partition(|template| declared_port_names(template).contains(port_name));
        if serving.is_empty() {
            let declared: Vec<String> = selected
                .iter()
                .map(|template| {
                    let names: Vec<&str> = declared_port_names(template).into_iter().collect();
                    format!(
                        "{} declares {}",
                        object_label(template.manifest),
                        list_or_none(&names)
                    )
                })
                .collect();
            let reason = format!(
                "no selected pod declares a container port named `{port_name}` ({})",
                declared.join("; ")
            );
            report.object(service, field, reason);
            continue;
        }
        // Pods without the port get no endpoint for it, but a selector that also catches them
        // (e.g. a Job sharing the component's labels) is broader than intended.
        for template in not_serving {
            let reason = format!(
                "the selector also matches the pods of {}, which declare no port `{port_name}`; \
                 narrow the selector (e.g. with app.kubernetes.io/component) to the pods that serve it",
                object_label(template.manifest)
            );
            report.object(service, field.clone(), reason);
        }
    }
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

fn declared_port_names<'a>(template: &PodTemplate<'a>) -> BTreeSet<&'a str> {
    items(template.spec.get("containers"))
        .flat_map(|(_, container)| items(container.get("ports")))
        .filter_map(|(_, port)| port.get("name").and_then(Value::as_str))
        .collect()
}

/// A PodDisruptionBudget or NetworkPolicy whose selector matches nothing protects nothing.
fn check_selector_selects_pods(
    manifest: &Manifest,
    dotted: &str,
    inventory: &Inventory,
    report: &mut Report,
) {
    let selector = lookup(&manifest.value, dotted)
        .cloned()
        .unwrap_or(Value::Null);
    if manifest.kind() == "NetworkPolicy" && label_selector_is_empty(&selector) {
        return; // an empty podSelector deliberately applies to every pod in the namespace
    }
    let annotation = format!(
        "/metadata/annotations/{}",
        crate::components::security::PODS_CREATED_BY_ANNOTATION.replace('/', "~1")
    );
    if manifest.kind() == "NetworkPolicy" && manifest.value.pointer(&annotation).is_some() {
        return; // pods an operator creates from a resource that carries no pod template
    }
    let mut matched = false;
    for template in inventory.templates_in(manifest.namespace()) {
        match label_selector_matches(&selector, &template.labels) {
            Ok(true) => matched = true,
            Ok(false) => {}
            Err(error) => {
                report.object(manifest, dotted, error.to_string());
                return;
            }
        }
    }
    if !matched {
        let reason = format!(
            "selects no pods: no workload in namespace `{}` has matching pod labels",
            manifest.namespace().unwrap_or_default()
        );
        report.object(manifest, dotted, reason);
    }
}

/// `spec.selector` of a workload must select its own pod template, or the API server rejects it.
fn check_workload_selector(template: &PodTemplate, report: &mut Report) {
    let manifest = template.manifest;
    if matches!(manifest.kind(), "Pod" | "CronJob") {
        return;
    }
    let field = FieldPath::of(template.selector_path);
    let Some(selector) = lookup(&manifest.value, template.selector_path) else {
        if manifest.kind() != "Job" {
            report.object(
                manifest,
                field,
                "required: a selector matching the pod template's labels",
            );
        }
        return;
    };
    match label_selector_matches(selector, &template.labels) {
        Ok(true) if !label_selector_is_empty(selector) => {}
        Ok(true) => report.object(
            manifest,
            field,
            "an empty selector is not allowed: select the pod template's labels",
        ),
        Ok(false) => {
            let reason = format!(
                "does not match the pod template's labels {}",
                describe_labels(&template.labels)
            );
            report.object(manifest, field, reason);
        }
        Err(error) => report.object(manifest, field, error.to_string()),
    }
}

fn check_statefulset(template: &PodTemplate, inventory: &Inventory, report: &mut Report) {
    let statefulset = template.manifest;
    let spec = &statefulset.value["spec"];
    let Some(service_name) = spec
        .get("serviceName")
        .and_then(Value::as_str)
        .filter(|name| !name.is_empty())
    else {
        return;
    };
    if inventory.external.contains(&("Service", service_name)) {
        return;
    }
    let Some(service) = inventory.find("Service", statefulset.namespace(), service_name) else {
        report.object(
            statefulset,
            "spec.serviceName",
            missing_reason("Service", service_name, statefulset.namespace()),
        );
        return;
    };
    // Stable per-pod DNS names (kafka-0.kafka-headless) only exist behind a headless Service.
    if service
        .value
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        != Some("None")
    {
        let reason = format!("Service `{service_name}` is not headless: set its spec.clusterIP to None so each pod gets a stable DNS name");
        report.object(statefulset, "spec.serviceName", reason);
    }
    let selects_these_pods = service
        .value
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .is_some_and(|selector| !selector.is_empty() && template.matched_by_labels(selector));
    if !selects_these_pods {
        let reason = format!(
            "Service `{service_name}` does not select this StatefulSet's pods {}",
            describe_labels(&template.labels)
        );
        report.object(statefulset, "spec.serviceName", reason);
    }
}

fn check_storage_class(
    referrer: &Manifest,
    claim_spec_path: &FieldPath,
    claim_spec: &Value,
    inventory: &Inventory,
    report: &mut Report,
) {
    // An empty class name deliberately binds to a pre-provisioned volume without a class.
    if let Some(class) = claim_spec
        .get("storageClassName")
        .and_then(Value::as_str)
        .filter(|class| !class.is_empty())
    {
        inventory.require(
            referrer,
            claim_spec_path.key("storageClassName"),
            "StorageClass",
            class,
            report,
        );
    }
}

fn check_scale_target(autoscaler: &Manifest, inventory: &Inventory, report: &mut Report) {
    let target = &autoscaler.value["spec"]["scaleTargetRef"];
    let kind = text(target, "kind");
    let name = text(target, "name");
    if !inventory.exists(kind, autoscaler.namespace(), name) {
        report.object(
            autoscaler,
            "spec.scaleTargetRef",
            missing_reason(kind, name, autoscaler.namespace()),
        );
    }
}

fn check_role_binding(binding: &Manifest, inventory: &Inventory, report: &mut Report) {
    let role_ref = &binding.value["roleRef"];
    let kind = text(role_ref, "kind");
    let name = text(role_ref, "name");
    inventory.require(binding, FieldPath::of("roleRef.name"), kind, name, report);
    for (index, subject) in items(binding.value.get("subjects")) {
        if subject.get("kind").and_then(Value::as_str) != Some("ServiceAccount") {
            continue;
        }
        let name = text(subject, "name");
        let namespace = subject
            .get("namespace")
            .and_then(Value::as_str)
            .or(binding.namespace());
        if !inventory.exists("ServiceAccount", namespace, name) {
            let path = FieldPath::of("subjects").index(index).key("name");
            report.object(
                binding,
                path,
                missing_reason("ServiceAccount", name, namespace),
            );
        }
    }
}

/// ConfigMaps, Secrets, claims and the service account a pod needs, and its volume mounts.
fn check_pod_references(template: &PodTemplate, inventory: &Inventory, report: &mut Report) {
    let manifest = template.manifest;
    let spec = template.spec;
    let spec_path = &template.spec_path;

    for key in ["serviceAccountName", "serviceAccount"] {
        if let Some(account) = spec
            .get(key)
            .and_then(Value::as_str)
            .filter(|name| *name != "default" && !name.is_empty())
        {
            inventory.require(
                manifest,
                spec_path.key(key),
                "ServiceAccount",
                account,
                report,
            );
        }
    }
    for (index, secret) in items(spec.get("imagePullSecrets")) {
        let name = text(secret, "name");
        inventory.require(
            manifest,
            spec_path.key("imagePullSecrets").index(index).key("name"),
            "Secret",
            name,
            report,
        );
    }

    let mut volume_names = BTreeSet::new();
    for (index, volume) in items(spec.get("volumes")) {
        let path = spec_path.key("volumes").index(index);
        volume_names.insert(text(volume, "name"));
        check_volume_source(manifest, &path, volume, inventory, report);
    }
    for (_, claim) in template.claim_templates() {
        volume_names.insert(
            claim
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        );
    }

    for container in template.containers() {
        for (index, mount) in items(container.value.get("volumeMounts")) {
            let name = text(mount, "name");
            if !volume_names.contains(name) {
                let known: Vec<&str> = volume_names.iter().copied().collect();
                let reason = format!(
                    "mounts volume `{name}`, which the pod does not define (defined: {})",
                    list_or_none(&known)
                );
                report.object(
                    manifest,
                    container.path.key("volumeMounts").index(index).key("name"),
                    reason,
                );
            }
        }
        // envFrom[].configMapRef and env[].valueFrom.configMapKeyRef, and their Secret twins.
        let env_sources = [
            (
                "envFrom",
                "",
                [("configMapRef", "ConfigMap"), ("secretRef", "Secret")],
            ),
            (
                "env",
                "valueFrom",
                [("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")],
            ),
        ];
        for (list, holder, references) in env_sources {
            for (index, entry) in items(container.value.get(list)) {
                let path = container.path.key(list).index(index);
                let path = if holder.is_empty() {
                    path
                } else {
                    path.key(holder)
                };
                for (key, kind) in references {
                    if let Some(reference) =
                        lookup(entry, holder).and_then(|holder| holder.get(key))
                    {
                        require_unless_optional(
                            manifest,
                            path.key(key),
                            kind,
                            reference,
                            inventory,
                            report,
                        );
                    }
                }
            }
        }
    }
}

fn check_volume_source(
    manifest: &Manifest,
    path: &FieldPath,
    volume: &Value,
    inventory: &Inventory,
    report: &mut Report,
) {
    const SOURCES: [(&str, &str); 2] = [("configMap", "ConfigMap"), ("secret", "Secret")];
    for (key, kind) in SOURCES {
        if let Some(source) = volume.get(key) {
            require_unless_optional(manifest, path.key(key), kind, source, inventory, report);
        }
    }
    if let Some(claim) = volume
        .pointer("/persistentVolumeClaim/claimName")
        .and_then(Value::as_str)
    {
        let path = path.key("persistentVolumeClaim").key("claimName");
        inventory.require(manifest, path, "PersistentVolumeClaim", claim, report);
    }
    for (index, projection) in items(volume.pointer("/projected/sources")) {
        let path = path.key("projected").key("sources").index(index);
        for (key, kind) in SOURCES {
            if let Some(source) = projection.get(key) {
                require_unless_optional(manifest, path.key(key), kind, source, inventory, report);
            }
        }
    }
}

/// Checks a ConfigMap/Secret reference (`name`, or `secretName` in secret volumes) and, when the
/// object is rendered here, that the keys it picks (`key` in env, `items[].key` in volumes) exist.
/// `optional: true` references may dangle.
fn require_unless_optional(
    referrer: &Manifest,
    path: FieldPath,
    kind: &str,
    reference: &Value,
    inventory: &Inventory,
    report: &mut Report,
) {
    if reference.get("optional").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let name_field = if reference.get("secretName").is_some() {
        "secretName"
    } else {
        "name"
    };
    let name = text(reference, name_field);
    inventory.require(referrer, path.key(name_field), kind, name, report);
    let Some(target) = inventory.find(kind, referrer.namespace(), name) else {
        return;
    };
    let env_key = reference
        .get("key")
        .map(|_| (path.key("key"), text(reference, "key")));
    let item_keys = items(reference.get("items"))
        .map(|(index, item)| (path.key("items").index(index).key("key"), text(item, "key")));
    for (field, key) in env_key.into_iter().chain(item_keys) {
        if !has_key(target, key) {
            report.object(referrer, field, missing_key_reason(kind, name, key, target));
        }
    }
}

fn data_keys(object: &Manifest) -> BTreeSet<&str> {
    ["data", "binaryData", "stringData"]
        .into_iter()
        .filter_map(|field| object.value.get(field).and_then(Value::as_object))
        .flat_map(|data| data.keys().map(String::as_str))
        .collect()
}

fn has_key(object: &Manifest, key: &str) -> bool {
    data_keys(object).contains(key)
}

fn missing_key_reason(kind: &str, name: &str, key: &str, target: &Manifest) -> String {
    let keys: Vec<&str> = data_keys(target).into_iter().collect();
    format!(
        "{kind} `{name}` has no key `{key}` (keys: {})",
        list_or_none(&keys)
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::*;
    use super::*;
    use crate::manifest::Manifest;

    const NAMESPACE: &str = "ehs-prod";

    fn prod() -> Platform {
        built("prod").0
    }

    fn good_environment() -> Vec<Manifest> {
        built("prod").1
    }

    /// The generic checks alone, with what operators create from the rendered custom resources
    /// (pods may mount a Secret an operator generates).
    fn findings(objects: &[Manifest], platform: &Platform) -> Vec<(String, String, String)> {
        let operator_created: Vec<(&'static str, String)> = crate::components::ALL
            .iter()
            .flat_map(|component| (component.operator_created)(platform))
            .collect();
        findings_of("prod", |report| {
            check(
                objects,
                platform,
                super::super::schema::registry(),
                &[],
                &operator_created,
                report,
            )
        })
    }

    fn one_finding(objects: &[Manifest]) -> (String, String, String) {
        let mut found = findings(objects, &prod());
        assert_eq!(found.len(), 1, "{found:#?}");
        found.remove(0)
    }

    #[test]
    fn what_the_compiler_builds_has_no_dangling_references() {
        for environment in ["dev", "prod"] {
            let (platform, objects) = built(environment);
            assert_eq!(findings(&objects, &platform), Vec::new());
        }
    }

    #[test]
    fn a_service_selecting_no_pods_fails() {
        let objects = changed(
            "Service",
            "kafka",
            "/spec/selector/app.kubernetes.io~1name",
            json!("kafak"),
        );
        let (object, field, reason) = one_finding(&objects);
        assert_eq!(
            (object.as_str(), field.as_str()),
            ("kafka/Service/kafka", "spec.selector")
        );
        assert!(reason.starts_with("selector {app.kubernetes.io/instance=ehs-prod, app.kubernetes.io/name=kafak} matches the pod labels of no workload"), "{reason}");
        assert!(reason.contains("kafka/StatefulSet/kafka has {"), "{reason}");
    }

    #[test]
    fn a_named_target_port_must_be_declared_by_the_selected_pods() {
        let objects = changed(
            "Service",
            "kafka",
            "/spec/ports/0/targetPort",
            json!("clinet"),
        );
        let (object, field, reason) = one_finding(&objects);
        assert_eq!(
            (object.as_str(), field.as_str()),
            ("kafka/Service/kafka", "spec.ports[0].targetPort")
        );
        assert_eq!(reason, "no selected pod declares a container port named `clinet` (kafka/StatefulSet/kafka declares tcp-client, tcp-controller)");
        // Numeric target ports need no declaration.
        let objects = changed("Service", "kafka", "/spec/ports/0/targetPort", json!(9092));
        assert_eq!(findings(&objects, &prod()), Vec::new());
    }

    #[test]
    fn a_selector_that_also_catches_pods_without_the_port_is_too_broad() {
        let mut objects = good_environment();
        let mut job = json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "kafka-topics", "namespace": NAMESPACE},
            "spec": {"template": {"metadata": {"labels": built("prod").1.iter().find(|o| o.kind() == "StatefulSet" && o.name() == "kafka").unwrap().value["spec"]["template"]["metadata"]["labels"].clone()},
                                  "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "topics"}]}}},
        });
        job["spec"]["template"]["spec"]["containers"][0]["image"] = json!("apache/kafka:4.1.0");
        objects.push(Manifest {
            component: "kafka".into(),
            value: job,
        });
        let found = findings(&objects, &prod());
        let places: Vec<(&str, &str)> = found
            .iter()
            .map(|(object, field, _)| (object.as_str(), field.as_str()))
            .collect();
        assert_eq!(
            places,
            [
                ("kafka/Service/kafka", "spec.ports[0].targetPort"),
                ("kafka/Service/kafka-quorum", "spec.ports[0].targetPort"),
                ("kafka/Service/kafka-quorum", "spec.ports[1].targetPort"),
            ]
        );
        assert_eq!(
            found[0].2,
            "the selector also matches the pods of kafka/Job/kafka-topics, which declare no port `tcp-client`; \
             narrow the selector (e.g. with app.kubernetes.io/component) to the pods that serve it"
        );
    }

    #[test]
    fn services_in_another_namespace_do_not_count() {
        let objects = changed("Service", "kafka", "/metadata/namespace", json!("ehs-dev"));
        let (_, field, _) = one_finding(&objects);
        assert_eq!(field, "spec.selector");
    }

    #[test]
    fn statefulset_service_name_must_name_a_headless_service_selecting_it() {
        let objects = changed(
            "StatefulSet",
            "kafka",
            "/spec/serviceName",
            json!("kafka-hedless"),
        );
        assert_eq!(
            one_finding(&objects),
            (
                "kafka/StatefulSet/kafka".to_owned(),
                "spec.serviceName".to_owned(),
                "Service `kafka-hedless` does not exist in namespace `ehs-prod`: render it in this environment or declare it as provided externally".to_owned()
            )
        );
        let objects = changed("StatefulSet", "kafka", "/spec/serviceName", json!("kafka"));
        let (_, field, reason) = one_finding(&objects);
        assert_eq!(field, "spec.serviceName");
        assert!(
            reason.starts_with("Service `kafka` is not headless"),
            "{reason}"
        );
        let objects = changed(
            "StatefulSet",
            "kafka",
            "/spec/serviceName",
            json!("ehs-bridge"),
        );
        let (_, _, reason) = one_finding(&objects);
        assert!(
            reason.starts_with("Service `ehs-bridge` does not select this StatefulSet's pods"),
            "{reason}"
        );
    }

    #[test]
    fn a_workload_selector_must_match_its_own_template() {
        let objects = changed(
            "StatefulSet",
            "ehs-bridge",
            "/spec/selector/matchLabels/app.kubernetes.io~1name",
            json!("bridge"),
        );
        let (object, field, reason) = one_finding(&objects);
        assert_eq!(
            (object.as_str(), field.as_str()),
            ("bridge/StatefulSet/ehs-bridge", "spec.selector")
        );
        assert!(
            reason.starts_with("does not match the pod template's labels"),
            "{reason}"
        );
    }

    #[test]
    fn a_pod_disruption_budget_must_select_pods() {
        let objects = changed(
            "PodDisruptionBudget",
            "kafka",
            "/spec/selector",
            json!({"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In", "values": ["zookeeper"]}]}),
        );
        let (object, field, reason) = one_finding(&objects);
        assert_eq!(
            (object.as_str(), field.as_str()),
            ("kafka/PodDisruptionBudget/kafka", "spec.selector")
        );
        assert_eq!(
            reason,
            "selects no pods: no workload in namespace `ehs-prod` has matching pod labels"
        );
    }

    #[test]
    fn network_policies_with_an_empty_selector_apply_to_all_pods() {
        let policy = |selector: Value| Manifest {
            component: "namespace".into(),
            value: json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "under-test", "namespace": NAMESPACE}, "spec": {"podSelector": selector}}),
        };
        let mut objects = good_environment();
        objects.push(policy(json!({})));
        assert_eq!(findings(&objects, &prod()), Vec::new());
        let mut objects = good_environment();
        objects.push(policy(
            json!({"matchLabels": {"app.kubernetes.io/name": "nothing"}}),
        ));
        assert_eq!(one_finding(&objects).1, "spec.podSelector");
    }

    #[test]
    fn config_maps_and_secrets_must_exist_unless_optional() {
        let objects = changed(
            "StatefulSet",
            "kafka",
            "/spec/template/spec/volumes/0/configMap/name",
            json!("kafka-conf"),
        );
        let (_, field, reason) = one_finding(&objects);
        assert_eq!(field, "spec.template.spec.volumes[0].configMap.name");
        assert_eq!(reason, "ConfigMap `kafka-conf` does not exist in namespace `ehs-prod`: render it in this environment or declare it as provided externally");

        let objects = changed(
            "StatefulSet",
            "ehs-bridge",
            "/spec/template/spec/volumes/0/secret/secretName",
            json!("mqtt-creds"),
        );
        assert_eq!(
            one_finding(&objects).1,
            "spec.template.spec.volumes[0].secret.secretName"
        );

        let env_from = |source: Value| {
            changed(
                "StatefulSet",
                "kafka",
                "/spec/template/spec/containers/0/env/3",
                json!({"name": "EXTRA", "valueFrom": source}),
            )
        };
        let objects = env_from(json!({"secretKeyRef": {"name": "nope", "key": "k"}}));
        assert_eq!(
            one_finding(&objects).1,
            "spec.template.spec.containers[0].env[3].valueFrom.secretKeyRef.name"
        );
        let objects = env_from(
            json!({"configMapKeyRef": {"name": "not-here", "key": "x", "optional": true}}),
        );
        assert_eq!(findings(&objects, &prod()), Vec::new());
        let objects = env_from(
            json!({"configMapKeyRef": {"name": "not-here", "key": "x", "optional": false}}),
        );
        assert_eq!(
            one_finding(&objects).1,
            "spec.template.spec.containers[0].env[3].valueFrom.configMapKeyRef.name"
        );
        let mut objects = changed(
            "StatefulSet",
            "kafka",
            "/spec/template/spec/containers/0/envFrom",
            json!([{"secretRef": {"name": "nope"}}]),
        );
        set(
            &mut objects,
            "StatefulSet",
            "kafka",
            "/spec/template/spec/containers/0/envFrom/1",
            json!({"configMapRef": {"name": "kafka-config"}}),
        );
        assert_eq!(
            one_finding(&objects).1,
            "spec.template.spec.containers[0].envFrom[0].secretRef.name"
        );
    }

    #[test]
    fn keys_of_rendered_config_maps_must_exist() {
        let objects = changed(
            "StatefulSet",
            "kafka",
            "/spec/template/spec/volumes/0/configMap/items",
            json!([{"key": "server.propertie", "path": "server.properties"}]),
        );
        let (_, field, reason) = one_finding(&objects);
        assert_eq!(
            field,
            "spec.template.spec.volumes[0].configMap.items[0].key"
        );
        assert_eq!(
            reason,
            "ConfigMap `kafka-config` has no key `server.propertie` (keys: server.properties, start.sh)"
        );

        let objects = changed(
            "StatefulSet",
            "kafka",
            "/spec/template/spec/containers/0/env/1/valueFrom",
            json!({"configMapKeyRef": {"name": "kafka-config", "key": "log.dirs"}}),
        );
        assert_eq!(
            one_finding(&objects).1,
            "spec.template.spec.containers[0].env[1].valueFrom.configMapKeyRef.key"
        );
    }

    #[test]
    fn storage_classes_must_exist_or_be_provided_externally() {
        let mut objects = changed(
            "StatefulSet",
            "kafka",
            "/spec/volumeClaimTemplates/0/spec/storageClassName",
            json!("fast-ssd"),
        );
        let (_, field, reason) = one_finding(&objects);
        assert_eq!(field, "spec.volumeClaimTemplates[0].spec.storageClassName");
        assert_eq!(reason, "StorageClass `fast-ssd` does not exist: render it in this environment or declare it as provided externally");

        // Rendering the StorageClass ourselves satisfies the reference too.
        objects.push(Manifest {
            component: "storage".into(),
            value: json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast-ssd"}, "provisioner": "x"}),
        });
        assert_eq!(findings(&objects, &prod()), Vec::new());

        let mut platform = prod();
        platform
            .environment
            .provided_externally
            .retain(|object| object.kind != "StorageClass");
        // One per workload with claims: Kafka's StatefulSet and the HiveMQPlatform's template.
        let mut objects = good_environment();
        objects.retain(|object| object.kind() != "StorageClass");
        let missing = findings(&objects, &platform);
        assert_eq!(missing.len(), 2, "{missing:#?}");
        assert!(missing.iter().all(|finding| finding
            .2
            .starts_with("StorageClass `local-path` does not exist")));
    }

    #[test]
    fn standalone_claims_must_name_an_existing_storage_class_and_be_mounted_by_name() {
        let mut objects = good_environment();
        objects.push(Manifest {
            component: "kafka".into(),
            value: json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "scratch", "namespace": NAMESPACE},
                          "spec": {"storageClassName": "nvme", "resources": {"requests": {"storage": "1Gi"}}}}),
        });
        set(
            &mut objects,
            "StatefulSet",
            "ehs-bridge",
            "/spec/template/spec/volumes/1",
            json!({"name": "scratch", "persistentVolumeClaim": {"claimName": "scratch"}}),
        );
        set(
            &mut objects,
            "StatefulSet",
            "ehs-bridge",
            "/spec/template/spec/volumes/2",
            json!({"name": "other", "persistentVolumeClaim": {"claimName": "missing"}}),
        );
        let found = findings(&objects, &prod());
        let fields: Vec<&str> = found.iter().map(|(_, field, _)| field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.template.spec.volumes[2].persistentVolumeClaim.claimName",
                "spec.storageClassName"
            ]
        );
    }

    #[test]
    fn volume_mounts_must_name_a_volume_or_claim_template() {
        let objects = changed(
            "StatefulSet",
            "kafka",
            "/spec/template/spec/containers/0/volumeMounts/0/name",
            json!("dta"),
        );
        let (_, field, reason) = one_finding(&objects);
        assert_eq!(
            field,
            "spec.template.spec.containers[0].volumeMounts[0].name"
        );
        assert_eq!(
            reason,
            "mounts volume `dta`, which the pod does not define (defined: data, kafka-config, tmp)"
        );
    }

    #[test]
    fn service_accounts_must_exist_except_default() {
        let objects = changed(
            "StatefulSet",
            "ehs-bridge",
            "/spec/template/spec/serviceAccountName",
            json!("bridge"),
        );
        assert_eq!(
            one_finding(&objects).1,
            "spec.template.spec.serviceAccountName"
        );
        let objects = changed(
            "StatefulSet",
            "ehs-bridge",
            "/spec/template/spec/serviceAccountName",
            json!("default"),
        );
        assert_eq!(findings(&objects, &prod()), Vec::new());
    }

    #[test]
    fn role_bindings_must_reference_existing_roles_and_accounts() {
        let binding = Manifest {
            component: "bridge".into(),
            value: json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "ehs-bridge", "namespace": NAMESPACE},
                          "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ehs-bridge"},
                          "subjects": [{"kind": "ServiceAccount", "name": "ehs-bridge"}, {"kind": "ServiceAccount", "name": "ghost"}]}),
        };
        let mut objects = good_environment();
        objects.push(binding);
        objects.push(Manifest {
            component: "bridge".into(),
            value: json!({"apiVersion": "v1", "kind": "ServiceAccount",
                          "metadata": {"name": "ehs-bridge", "namespace": NAMESPACE}}),
        });
        let fields: Vec<String> = findings(&objects, &prod())
            .into_iter()
            .map(|(_, field, _)| field)
            .collect();
        assert_eq!(fields, ["roleRef.name", "subjects[1].name"]);
    }

    #[test]
    fn autoscalers_must_target_an_existing_workload() {
        let autoscaler = |target: &str| Manifest {
            component: "bridge".into(),
            value: json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "ehs-bridge", "namespace": NAMESPACE},
                          "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": target}, "minReplicas": 2, "maxReplicas": 4}}),
        };
        let mut objects = good_environment();
        objects.push(autoscaler("ehs-bridge"));
        assert_eq!(findings(&objects, &prod()), Vec::new());
        let mut objects = good_environment();
        objects.push(autoscaler("ehs-brigde"));
        assert_eq!(one_finding(&objects).1, "spec.scaleTargetRef");
    }

    #[test]
    fn duplicate_objects_fail() {
        let mut objects = good_environment();
        objects.push(Manifest {
            component: "other".into(),
            value: good_environment()
                .into_iter()
                .find(|object| object.name() == "kafka-config")
                .unwrap()
                .value,
        });
        let (object, field, reason) = one_finding(&objects);
        assert_eq!(
            (object.as_str(), field.as_str()),
            ("other/ConfigMap/kafka-config", "metadata.name")
        );
        assert!(
            reason.starts_with("another ConfigMap named `kafka-config`"),
            "{reason}"
        );
    }
}
