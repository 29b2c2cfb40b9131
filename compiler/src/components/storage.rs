//! Persistent storage: the one StorageClass every volume claim of the platform names, and, on
//! bare clusters, the local-path provisioner (rancher/local-path-provisioner) that serves it.
//!
//! The provisioner's objects follow upstream's `deploy/local-path-storage.yaml` of the pinned
//! version. Its helper pods mount a `hostPath` and run as root to create and remove the volume
//! directories on a node, which Pod Security "restricted" (and "baseline") forbid; so the
//! provisioner runs in a namespace of its own, labelled `privileged`, and the environment's
//! namespace stays restricted. The provisioner's own pod is still restricted.
//!
//! The provisioner name `rancher.io/local-path` is upstream's: two provisioners of that name in
//! one cluster would both act on every claim, so at most one environment per cluster renders it
//! (the others set `provisioner: none` and list the class in `providedExternally`). The
//! cluster-scoped RBAC objects carry the environment's namespace in their name all the same, so
//! it is plain which environment owns them.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ContainerPort, Namespace, PodSpec, PodTemplateSpec, Probe,
    ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::namespace::{self, PodSecurityLevel};
use super::{
    config_map_volume, manifest, pod_field_env_var, restricted_container, restricted_pod_security,
    short_hash, App, ComponentError, ComponentHooks, CONFIG_CHECKSUM_ANNOTATION,
};
use crate::manifest::Manifest;
use crate::model::{DnsSubdomain, Image, ImageLayer, Resources, ResourcesLayer};
use crate::resolve::Platform;
use crate::templates::Templates;
use crate::validate::{KindSchema, Report};

pub const NAME: &str = "storage";

/// Overridable storage settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "StorageSettings")]
pub struct Layer {
    /// Who provisions the platform's volumes: `local-path` renders the local-path provisioner and
    /// the StorageClass `className`; `none` renders neither, and `className` must be listed in
    /// `providedExternally` (a managed cluster's own class).
    pub provisioner: Option<Provisioner>,
    /// The StorageClass every PersistentVolumeClaim of the platform names (Kafka, HiveMQ,
    /// TimescaleDB); the only place it is set.
    pub class_name: Option<DnsSubdomain>,
    /// What happens to a volume's data when its claim is deleted (local-path only).
    pub reclaim_policy: Option<ReclaimPolicy>,
    /// Absolute directory on every node under which volumes are created (local-path only).
    pub node_path: Option<String>,
    /// The `rancher/local-path-provisioner` image.
    pub image: Option<ImageLayer>,
    /// Image of the helper pods that create and delete volume directories on a node; needs `sh`,
    /// `mkdir` and `rm`.
    pub helper_image: Option<ImageLayer>,
    /// Resources of the provisioner.
    pub resources: Option<ResourcesLayer>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Provisioner {
    /// rancher/local-path-provisioner: node-local directories, for bare clusters.
    LocalPath,
    /// The cluster provides the StorageClass (managed clusters).
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum ReclaimPolicy {
    /// Remove the volume's directory when the claim is deleted.
    Delete,
    /// Keep the directory (and the PersistentVolume) for an administrator to clean up.
    Retain,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub provisioner: Provisioner,
    pub class_name: DnsSubdomain,
    pub reclaim_policy: ReclaimPolicy,
    pub node_path: String,
    pub image: Image,
    pub helper_image: Image,
    pub resources: Resources,
}

/// Upstream's provisioner name, which its controller acts for.
pub const PROVISIONER_NAME: &str = "rancher.io/local-path";
const APP: &str = "local-path-provisioner";
/// Upstream's names: the provisioner's flags default to them.
const SERVICE_ACCOUNT: &str = "local-path-provisioner-service-account";
const CONFIG_MAP: &str = "local-path-config";
const CONFIG_MOUNT: &str = "/etc/config";
/// `nobody`: the provisioner only talks to the API server and reads its config.
const PROVISIONER_UID: i64 = 65534;

/// The provisioner's namespace: the environment's, suffixed, so it is the environment's own.
pub fn provisioner_namespace(platform: &Platform) -> String {
    format!("{}-storage", platform.environment.namespace)
}

fn cluster_role_name(platform: &Platform) -> String {
    format!("{}-{APP}", platform.environment.namespace)
}

pub fn build(platform: &Platform, templates: &Templates) -> Result<Vec<Manifest>, ComponentError> {
    let settings = &platform.storage;
    if settings.provisioner == Provisioner::None {
        return Ok(Vec::new());
    }
    let app = App {
        platform,
        name: APP,
        component: NAME,
    };
    let namespace = provisioner_namespace(platform);
    let namespaced = |name: &str| ObjectMeta {
        namespace: Some(namespace.clone()),
        ..app.metadata(name)
    };
    let cluster_scoped = |name: &str| ObjectMeta {
        namespace: None,
        ..app.metadata(name)
    };

    let mut labels = app.labels();
    // hostPath volumes of the helper pods: only "privileged" admits them.
    labels.extend(namespace::pod_security_labels(
        PodSecurityLevel::Privileged,
        &platform.namespace.pod_security_version,
    ));
    let own_namespace = Namespace {
        metadata: ObjectMeta {
            labels: Some(labels),
            ..cluster_scoped(&namespace)
        },
        ..Default::default()
    };

    let config = config_map(platform, templates)?;
    let checksum = short_hash(
        &serde_json::to_string(&config.data).unwrap_or_default(),
        16,
    );
    let config = ConfigMap {
        metadata: namespaced(CONFIG_MAP),
        ..config
    };

    let service_account = ServiceAccount {
        metadata: namespaced(SERVICE_ACCOUNT),
        ..Default::default()
    };
    let rule = |groups: &[&str], resources: &[&str], verbs: &[&str]| PolicyRule {
        api_groups: Some(strings(groups)),
        resources: Some(strings(resources)),
        verbs: strings(verbs),
        ..Default::default()
    };
    let read = ["get", "list", "watch"];
    let manage = ["get", "list", "watch", "create", "patch", "update", "delete"];
    // The helper pods live in the provisioner's namespace; it manages them there only.
    let role = Role {
        metadata: namespaced(APP),
        rules: Some(vec![rule(&[""], &["pods"], &manage)]),
    };
    let cluster_role = ClusterRole {
        metadata: cluster_scoped(&cluster_role_name(platform)),
        rules: Some(vec![
            rule(
                &[""],
                &[
                    "nodes",
                    "persistentvolumeclaims",
                    "configmaps",
                    "pods",
                    "pods/log",
                ],
                &read,
            ),
            rule(&[""], &["persistentvolumes"], &manage),
            rule(&[""], &["events"], &["create", "patch"]),
            rule(&["storage.k8s.io"], &["storageclasses"], &read),
        ]),
        ..Default::default()
    };
    let subject = Subject {
        kind: "ServiceAccount".to_owned(),
        name: SERVICE_ACCOUNT.to_owned(),
        namespace: Some(namespace.clone()),
        ..Default::default()
    };
    let role_binding = RoleBinding {
        metadata: namespaced(APP),
        role_ref: role_ref("Role", APP),
        subjects: Some(vec![subject.clone()]),
    };
    let cluster_role_binding = ClusterRoleBinding {
        metadata: cluster_scoped(&cluster_role_name(platform)),
        role_ref: role_ref("ClusterRole", &cluster_role_name(platform)),
        subjects: Some(vec![subject]),
    };

    let (config_volume, config_mount) = config_map_volume(CONFIG_MAP, CONFIG_MOUNT);
    let container = Container {
        command: Some(strings(&[
            "local-path-provisioner",
            "start",
            "--config",
            &format!("{CONFIG_MOUNT}/config.json"),
            "--provisioner-name",
            PROVISIONER_NAME,
            "--service-account-name",
            SERVICE_ACCOUNT,
            "--configmap-name",
            CONFIG_MAP,
        ])),
        env: Some(vec![
            pod_field_env_var("POD_NAMESPACE", "metadata.namespace"),
            super::env_var("CONFIG_MOUNT_PATH", format!("{CONFIG_MOUNT}/")),
            super::env_var("HEALTH_PORT", HEALTH_PORT.to_string()),
        ]),
        ports: Some(vec![ContainerPort {
            name: Some(HEALTH_PORT_NAME.to_owned()),
            container_port: HEALTH_PORT,
            protocol: Some("TCP".to_owned()),
            ..Default::default()
        }]),
        // As upstream's deploy/local-path-storage.yaml since v0.0.34: `/ready` lists the objects
        // the provisioner works on, so a pod whose RBAC is broken never becomes ready.
        startup_probe: Some(health_probe("/health", 5, 12)),
        liveness_probe: Some(health_probe("/health", 10, 3)),
        readiness_probe: Some(health_probe("/ready", 5, 3)),
        volume_mounts: Some(vec![config_mount]),
        ..restricted_container(APP, settings.image.to_string(), &settings.resources)
    };
    let deployment = Deployment {
        metadata: namespaced(APP),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: app.selector(),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(app.labels()),
                    annotations: Some(BTreeMap::from([(
                        CONFIG_CHECKSUM_ANNOTATION.to_owned(),
                        checksum,
                    )])),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(SERVICE_ACCOUNT.to_owned()),
                    security_context: Some(restricted_pod_security(PROVISIONER_UID)),
                    containers: vec![container],
                    volumes: Some(vec![config_volume]),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    };

    let storage_class = StorageClass {
        metadata: cluster_scoped(settings.class_name.as_ref()),
        provisioner: PROVISIONER_NAME.to_owned(),
        reclaim_policy: Some(
            match settings.reclaim_policy {
                ReclaimPolicy::Delete => "Delete",
                ReclaimPolicy::Retain => "Retain",
            }
            .to_owned(),
        ),
        // A node-local volume must be created on the node the pod is scheduled to.
        volume_binding_mode: Some("WaitForFirstConsumer".to_owned()),
        ..Default::default()
    };

    Ok(vec![
        manifest(NAME, &own_namespace)?,
        manifest(NAME, &service_account)?,
        manifest(NAME, &role)?,
        manifest(NAME, &role_binding)?,
        manifest(NAME, &cluster_role)?,
        manifest(NAME, &cluster_role_binding)?,
        manifest(NAME, &config)?,
        manifest(NAME, &deployment)?,
        manifest(NAME, &storage_class)?,
    ])
}

/// The provisioner's health server (`--health-port`, `HEALTH_PORT`; upstream's default).
const HEALTH_PORT: i32 = 8080;
const HEALTH_PORT_NAME: &str = "health";

fn health_probe(path: &str, period_seconds: i32, failure_threshold: i32) -> Probe {
    super::http_probe(path, HEALTH_PORT_NAME, period_seconds, failure_threshold, 2)
}

/// `local-path-config`: where volumes go on each node and how the helper pods create and remove
/// them. Metadata is set by the caller.
fn config_map(platform: &Platform, templates: &Templates) -> Result<ConfigMap, ComponentError> {
    let settings = &platform.storage;
    let config = serde_json::json!({
        "nodePathMap": [{
            "node": "DEFAULT_PATH_FOR_NON_LISTED_NODES",
            "paths": [settings.node_path],
        }],
    });
    let config = serde_json::to_string_pretty(&config).map_err(|source| {
        ComponentError::Serialize {
            component: NAME,
            kind: "ConfigMap",
            source,
        }
    })?;
    let helper_pod = templates.render(
        "storage/helperPod.yaml.j2",
        serde_json::json!({ "image": settings.helper_image.to_string() }),
    )?;
    Ok(ConfigMap {
        data: Some(BTreeMap::from([
            ("config.json".to_owned(), format!("{config}\n")),
            (
                "setup".to_owned(),
                templates.render("storage/setup.j2", ())?,
            ),
            (
                "teardown".to_owned(),
                templates.render("storage/teardown.j2", ())?,
            ),
            ("helperPod.yaml".to_owned(), helper_pod),
        ])),
        ..Default::default()
    })
}

fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef {
        api_group: "rbac.authorization.k8s.io".to_owned(),
        kind: kind.to_owned(),
        name: name.to_owned(),
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

/// Storage's part in `ehs validate`. A class nobody renders is already a finding of the generic
/// StorageClass reference check on every claim template; here, the settings only the provisioner
/// reads.
pub struct Hooks;

impl ComponentHooks for Hooks {
    fn stage() -> super::Stage {
        super::Stage::Foundation
    }

    fn kinds() -> Vec<KindSchema> {
        vec![
            KindSchema::of::<Namespace>(),
            KindSchema::of::<ServiceAccount>(),
            KindSchema::of::<Role>(),
            KindSchema::of::<RoleBinding>(),
            KindSchema::of::<ClusterRole>(),
            KindSchema::of::<ClusterRoleBinding>(),
            KindSchema::of::<ConfigMap>(),
            KindSchema::of::<Deployment>(),
            KindSchema::of::<StorageClass>(),
        ]
    }

    fn invariants(platform: &Platform, _objects: &[Manifest], report: &mut Report) {
        let settings = &platform.storage;
        if settings.provisioner == Provisioner::LocalPath && !settings.node_path.starts_with('/')
        {
            report.model(
                format!("{NAME}.nodePath"),
                format!(
                    "must be an absolute directory on the nodes, e.g. `/opt/local-path-provisioner`; found `{}`",
                    settings.node_path
                ),
            );
        }
    }

    /// The provisioner watches claims and creates volumes through the API server.
    fn flows(platform: &Platform) -> Vec<crate::graph::Flow> {
        if platform.storage.provisioner == Provisioner::None {
            return Vec::new();
        }
        let app = App {
            platform,
            name: APP,
            component: NAME,
        };
        let provisioner = crate::graph::Peer::in_namespace(
            APP,
            &provisioner_namespace(platform),
            app.selector_labels(),
        );
        let (api, ports) = super::security::kubernetes_api(platform);
        vec![crate::graph::Flow::new(
            provisioner,
            api,
            ports,
            "provisions volumes",
        )]
    }

    fn namespaces(platform: &Platform) -> Vec<String> {
        match platform.storage.provisioner {
            Provisioner::LocalPath => vec![provisioner_namespace(platform)],
            Provisioner::None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::Provisioner;
    use crate::components::build_all;
    use crate::model::ExternalObject;
    use crate::resolve::tests::{platform, templates};
    use crate::resolve::Platform;
    use crate::validate::validate;

    fn findings(platform: &Platform) -> Vec<String> {
        let objects = build_all(platform, &templates()).unwrap();
        validate(&objects, platform)
            .iter()
            .map(|finding| format!("{}: {}: {}", finding.object, finding.field, finding.reason))
            .collect()
    }

    /// Every StorageClass name anywhere in `value`, as (field, class).
    fn classes_named(value: &Value, found: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    match (key.as_str(), inner) {
                        ("storageClassName" | "storageClass", Value::String(class)) => {
                            found.push((key.clone(), class.clone()));
                        }
                        _ => classes_named(inner, found),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| classes_named(item, found)),
            _ => {}
        }
    }

    #[test]
    fn the_one_class_setting_reaches_every_volume_claim_of_the_platform() {
        for environment in ["dev", "prod"] {
            let mut platform = platform(environment);
            platform.storage.class_name = "fast-ssd".into();
            let mut claimers = Vec::new();
            for object in build_all(&platform, &templates()).unwrap() {
                let mut found = Vec::new();
                classes_named(&object.value, &mut found);
                for (field, class) in found {
                    assert_eq!(class, "fast-ssd", "{}: {field}", object.name());
                    claimers.push(object.component.clone());
                }
            }
            claimers.sort();
            claimers.dedup();
            assert_eq!(claimers, ["hivemq", "kafka", "timescaledb"]);
        }
    }

    #[test]
    fn local_path_renders_the_class_its_provisioner_serves_and_validates_clean() {
        let platform = platform("prod");
        let objects = super::build(&platform, &templates()).unwrap();
        let class = objects
            .iter()
            .find(|object| object.kind() == "StorageClass")
            .expect("StorageClass");
        assert_eq!(class.name(), "local-path");
        assert_eq!(class.value["provisioner"], super::PROVISIONER_NAME);
        assert_eq!(class.value["volumeBindingMode"], "WaitForFirstConsumer");
        assert_eq!(class.value["reclaimPolicy"], "Delete");
        let namespace = objects
            .iter()
            .find(|object| object.kind() == "Namespace")
            .expect("own namespace");
        assert_eq!(namespace.name(), "ehs-prod-storage");
        assert_eq!(
            namespace.value["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
            "privileged"
        );
        for object in &objects {
            if let Some(namespace) = object.namespace() {
                assert_eq!(namespace, "ehs-prod-storage", "{}", object.name());
            }
        }
        assert_eq!(findings(&platform), Vec::<String>::new());
    }

    #[test]
    fn without_a_provisioner_the_class_must_be_provided_externally() {
        let mut platform = platform("dev");
        platform.storage.provisioner = Provisioner::None;
        platform.storage.class_name = "gp3".into();
        assert_eq!(super::build(&platform, &templates()).unwrap().len(), 0);
        let findings_without = findings(&platform);
        for object in [
            "kafka/StatefulSet/kafka: spec.volumeClaimTemplates[0].spec.storageClassName",
            "timescaledb/Cluster/timescaledb: spec.storage.storageClass",
        ] {
            assert!(
                findings_without.iter().any(|finding| finding
                    .starts_with(&format!("{object}: StorageClass `gp3` does not exist"))),
                "{object}: {findings_without:#?}"
            );
        }
        platform
            .environment
            .provided_externally
            .push(ExternalObject {
                kind: "StorageClass".to_owned(),
                name: "gp3".into(),
            });
        assert_eq!(findings(&platform), Vec::<String>::new());
    }

    #[test]
    fn objects_in_an_undeclared_extra_namespace_are_findings() {
        let mut platform = platform("dev");
        let mut objects = build_all(&platform, &templates()).unwrap();
        platform.storage.provisioner = Provisioner::None;
        // The provisioner's objects without the hook declaring their namespace.
        let found = validate(&objects, &platform);
        assert!(
            found.iter().any(|finding| finding.object
                == "storage/Deployment/local-path-provisioner"
                && finding.field == "metadata.namespace"),
            "{found:#?}"
        );
        platform.storage.provisioner = Provisioner::LocalPath;
        objects.retain(|object| object.kind() != "Namespace" || object.name() == "ehs-dev");
        let found = validate(&objects, &platform);
        assert!(
            found.iter().any(|finding| finding
                .reason
                .contains("namespace `ehs-dev-storage` but does not render it")),
            "{found:#?}"
        );
    }

    #[test]
    fn a_relative_node_path_is_a_finding() {
        let mut platform = platform("dev");
        platform.storage.node_path = "opt/volumes".to_owned();
        assert!(findings(&platform)
            .iter()
            .any(|finding| finding.contains("storage.nodePath: must be an absolute directory")));
    }
}
