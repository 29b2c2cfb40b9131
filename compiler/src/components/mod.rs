//! The platform's components. Each one turns the resolved model into Kubernetes objects and
//! owns everything validation must know about them.
//!
//! # Adding a component
//!
//! 1. Write `compiler/src/components/<name>.rs` (or `<name>/mod.rs` with helpers beside it)
//!    providing:
//!    - `NAME` (`"<name>"`);
//!    - `Layer`: the settings an environment file may override, every field optional and
//!      documented (this is the schema editors see);
//!    - `Settings`: the same fields resolved, none optional (or derived, documented on `Layer`);
//!    - `build`: the component's objects, as k8s-openapi (or typed custom-resource) structs;
//!    - `Hooks`, a unit struct implementing [`ComponentHooks`]: `kinds` (every group/version/kind
//!      it renders, with its schema; required), `invariants` (its own rules about its settings
//!      and objects) and `references` (references inside its objects the generic checks cannot
//!      see) and `operator_created` (objects an operator creates from its custom resources, which
//!      references may name) and `namespaces` (namespaces of its own besides the environment's,
//!      for what cannot run under Pod Security restricted) and `flows` (the connections its pods
//!      open or accept, from which the NetworkPolicies are rendered). The last five default to
//!      none.
//! 2. Write `components/<name>/defaults.yaml` giving every setting a value, plus any `*.j2`
//!    templates of config files.
//! 3. Add one line `<name> => <key>` to [`for_each_component!`], where `<key>` is the field of
//!    environment files that holds its overrides (written camelCase there).
//!
//! `validate/` keeps only checks that hold for every object (schemas, Pod Security restricted,
//! resources, selectors, named ports, ConfigMap/Secret references, the namespace, HA replicas in
//! production); anything that needs to know what a component is lives in its `Hooks`.
//!
//! # How one line is enough
//!
//! [`for_each_component!`] is the only list of components. `for_each_component!(some_macro)`
//! expands to `some_macro! { namespace => namespace_settings, kafka => kafka, ... }`, and each
//! pipeline stage has a small `some_macro` next to the type it defines:
//!
//! - `model.rs`: the field `<key>: Option<<name>::Layer>` of `Environment`, documented as
//!   "Overrides of `components/<name>/defaults.yaml`."
//! - `load.rs`: the field `<name>` of `Defaults`, read from `components/<name>/defaults.yaml`.
//! - `resolve.rs`: the field `<name>: <name>::Settings` of `Platform`: the defaults overlaid with
//!   the environment's `<key>`.
//! - here: `pub mod <name>;` and the component's place in [`ALL`], the build order, with its
//!   hooks.
//!
//! Fields stay typed fields, so the environment schema, unknown-key errors with file:line:column
//! and `platform.kafka.replicas` all work as if they were written out by hand.

/// The registered components, in build order: `<module> => <key of its overrides in environment
/// files>`. Calls `$callback!` with the list; see the module documentation.
macro_rules! for_each_component {
    ($callback:ident) => {
        $callback! {
            namespace => namespace_settings,
            storage => storage,
            kafka => kafka,
            hivemq => hivemq,
            timescaledb => timescaledb,
            bridge => bridge,
            connect => connect,
            exposure => exposure,
            certificates => certificates,
            security => security,
            gitops => gitops,
        }
    };
}
pub(crate) use for_each_component;

/// Declares a typed custom resource `$kind { api_version, kind, metadata, spec: $spec }` with
/// its `k8s_openapi::Resource` identity, so `KindSchema::of` and `manifest` take it like a core
/// kind. The struct is strict (`deny_unknown_fields`) so its schema is as strict as the CRD.
macro_rules! custom_resource {
    (
        $(#[$attr:meta])*
        $kind:ident($spec:ty): $group:literal / $version:literal, $plural:literal, $scope:ty
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        pub struct $kind {
            pub api_version: String,
            pub kind: String,
            pub metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
            pub spec: $spec,
        }

        impl $kind {
            pub fn new(
                metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
                spec: $spec,
            ) -> Self {
                use k8s_openapi::Resource;
                Self {
                    api_version: Self::API_VERSION.to_owned(),
                    kind: Self::KIND.to_owned(),
                    metadata,
                    spec,
                }
            }
        }

        impl k8s_openapi::Resource for $kind {
            const API_VERSION: &'static str = concat!($group, "/", $version);
            const GROUP: &'static str = $group;
            const KIND: &'static str = stringify!($kind);
            const VERSION: &'static str = $version;
            const URL_PATH_SEGMENT: &'static str = $plural;
            type Scope = $scope;
        }

        impl k8s_openapi::Metadata for $kind {
            type Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

            fn metadata(&self) -> &Self::Ty {
                &self.metadata
            }

            fn metadata_mut(&mut self) -> &mut Self::Ty {
                &mut self.metadata
            }
        }
    };
}

/// Declares the component modules and [`ALL`].
macro_rules! declare_components {
    ($($component:ident => $key:ident),* $(,)?) => {
        $(pub mod $component;)*

        /// Every component, in build order. The name is also the folder under `components/` and
        /// under `rendered/<env>/`.
        pub const ALL: &[Component] = &[$(Component {
            name: $component::NAME,
            build: $component::build,
            kinds: <$component::Hooks as ComponentHooks>::kinds,
            invariants: <$component::Hooks as ComponentHooks>::invariants,
            references: <$component::Hooks as ComponentHooks>::references,
            operator_created: <$component::Hooks as ComponentHooks>::operator_created,
            namespaces: <$component::Hooks as ComponentHooks>::namespaces,
            flows: <$component::Hooks as ComponentHooks>::flows,
            tool_namespaces: <$component::Hooks as ComponentHooks>::tool_namespaces,
            stage: <$component::Hooks as ComponentHooks>::stage,
        }),*];

        // The module name is what the generated docs and the environment schema say; `NAME` is
        // what the code uses at run time. They must agree.
        $(const _: () = assert!(
            same_text($component::NAME, stringify!($component)),
            concat!("components/", stringify!($component), ".rs: NAME must be \"",
                stringify!($component), "\"")
        );)*
    };
}
for_each_component!(declare_components);

/// `a == b` for strings, usable in constants.
const fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut index = 0;
    while index < a.len() {
        if a[index] != b[index] {
            return false;
        }
        index += 1;
    }
    true
}

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMapVolumeSource, Container, ContainerPort, HTTPGetAction,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PodAffinityTerm, PodAntiAffinity,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile,
    SecurityContext, ServicePort, Volume, VolumeMount, VolumeResourceRequirements,
    WeightedPodAffinityTerm,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::graph::Flow;
use crate::manifest::Manifest;
use crate::model::{Count, Resources};
use crate::resolve::Platform;
use crate::templates::{TemplateError, Templates};
use crate::validate::{KindSchema, Reference, Report};

pub struct Component {
    pub name: &'static str,
    pub build: fn(&Platform, &Templates) -> Result<Vec<Manifest>, ComponentError>,
    pub kinds: fn() -> Vec<KindSchema>,
    pub invariants: fn(&Platform, &[Manifest], &mut Report),
    pub references: fn(&Platform) -> Vec<Reference>,
    pub operator_created: fn(&Platform) -> Vec<(&'static str, String)>,
    pub namespaces: fn(&Platform) -> Vec<String>,
    pub flows: fn(&Platform) -> Vec<Flow>,
    pub tool_namespaces: fn(&Platform) -> Vec<String>,
    pub stage: fn() -> Stage,
}

/// Where a component's objects come in the order a GitOps sync applies an environment, after
/// the upstream operators and their CRDs (which the `gitops` component installs before the
/// environment). Argo CD reads it as the objects' sync wave, Flux as the `dependsOn` of one
/// Kustomization per component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// The environment's Namespace: everything else lives in it.
    Namespace,
    /// What the stateful components need before they start: storage, certificate issuers and
    /// certificates, the HTTP edge the ACME challenges are answered through.
    Foundation,
    /// The stateful components: Kafka, HiveMQ, TimescaleDB.
    Stateful,
    /// Their clients: the bridge, Kafka Connect and the connector registration Job.
    Clients,
    /// The GitOps definitions that apply all of the above: applied by the bootstrap, never by
    /// the environment's own sync.
    Delivery,
}

/// The annotation Argo CD orders a sync by: lower waves are applied (and healthy) first.
pub const SYNC_WAVE_ANNOTATION: &str = "argocd.argoproj.io/sync-wave";

impl Stage {
    /// The stages an environment's sync goes through, in order.
    pub const SYNCED: [Stage; 4] = [
        Stage::Namespace,
        Stage::Foundation,
        Stage::Stateful,
        Stage::Clients,
    ];

    /// Argo CD's sync wave of the stage's objects; none for the GitOps definitions.
    pub fn sync_wave(self) -> Option<usize> {
        Self::SYNCED.iter().position(|stage| *stage == self)
    }
}

/// What a component tells `ehs validate` about itself. Implemented by each component module's
/// unit struct `Hooks`; the registry reads it, so a new component needs no edit in `validate/`.
pub trait ComponentHooks {
    /// Every kind the component renders (`KindSchema::of::<T>()` for a k8s-openapi type or a
    /// typed custom resource), identified by API group, version and kind. An object whose kind
    /// its component does not declare fails validation.
    fn kinds() -> Vec<KindSchema>;

    /// Rules only this component knows: about its resolved settings (`report.model`) and its
    /// objects (`report.object`).
    fn invariants(_platform: &Platform, _objects: &[Manifest], _report: &mut Report) {}

    /// Objects its objects name where the generic checks cannot see it (an address in an
    /// environment variable, a field of a custom resource). Each must be rendered in the
    /// environment or declared in its `providedExternally`.
    fn references(_platform: &Platform) -> Vec<Reference> {
        Vec::new()
    }

    /// Objects (kind, name) an operator creates in the namespace from this component's custom
    /// resources, e.g. the Services a `HiveMQPlatform` declares or the Secrets and Services of a
    /// database cluster. References may name them although they are not rendered.
    fn operator_created(_platform: &Platform) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// Namespaces besides the environment's that the component renders and puts its objects in,
    /// because what runs there cannot meet Pod Security "restricted" (e.g. pods that mount a
    /// host directory). Each must still be rendered with an explicit Pod Security level.
    fn namespaces(_platform: &Platform) -> Vec<String> {
        Vec::new()
    }

    /// The connections its pods open or accept, built from the values that wire them (the
    /// Service and port its configuration names). Every namespace is default-deny: a flow no
    /// component declares is blocked, and a Service named in `references` needs a flow `via` it.
    fn flows(_platform: &Platform) -> Vec<Flow> {
        Vec::new()
    }

    /// Namespaces of tools installed outside the platform (Argo CD's, Flux's) that the component
    /// puts objects in: the tool's installation creates them, so the environment does not render
    /// them.
    fn tool_namespaces(_platform: &Platform) -> Vec<String> {
        Vec::new()
    }

    /// The component's place in the order a GitOps sync applies the environment.
    fn stage() -> Stage;
}

#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    #[error("component `{component}`: {message}")]
    Model {
        component: &'static str,
        message: String,
    },
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("component `{component}`: could not serialise {kind}")]
    Serialize {
        component: &'static str,
        kind: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// Builds every component's objects for one environment.
pub fn build_all(
    platform: &Platform,
    templates: &Templates,
) -> Result<Vec<Manifest>, ComponentError> {
    build_all_of(platform, templates, |_| true)
}

/// The objects of every component the environment's own sync applies (all but the GitOps
/// definitions), as `build_all` returns them: what those definitions are derived from.
pub fn synced_objects(
    platform: &Platform,
    templates: &Templates,
) -> Result<Vec<Manifest>, ComponentError> {
    build_all_of(platform, templates, |stage| stage != Stage::Delivery)
}

fn build_all_of(
    platform: &Platform,
    templates: &Templates,
    include: impl Fn(Stage) -> bool,
) -> Result<Vec<Manifest>, ComponentError> {
    let mut objects = Vec::new();
    for component in ALL.iter().filter(|component| include((component.stage)())) {
        let mut built = (component.build)(platform, templates)?;
        if let Some(wave) = (component.stage)().sync_wave() {
            for object in &mut built {
                annotate(&mut object.value, SYNC_WAVE_ANNOTATION, &wave.to_string());
            }
        }
        objects.extend(built);
    }
    security::annotate_checkov_skips(platform, &mut objects);
    Ok(objects)
}

/// Sets `metadata.annotations[key]` of a serialised object.
pub fn annotate(object: &mut serde_json::Value, key: &str, value: &str) {
    let metadata = &mut object["metadata"];
    if !metadata["annotations"].is_object() {
        metadata["annotations"] = serde_json::Value::Object(Default::default());
    }
    metadata["annotations"][key] = serde_json::Value::String(value.to_owned());
}

/// Serialises a typed object into the form validation and emission work on.
fn manifest<K>(component: &'static str, object: &K) -> Result<Manifest, ComponentError>
where
    K: k8s_openapi::Resource + Serialize,
{
    let value = serde_json::to_value(object).map_err(|source| ComponentError::Serialize {
        component,
        kind: K::KIND,
        source,
    })?;
    Ok(Manifest {
        component: component.to_owned(),
        value,
    })
}

/// The identity of one application inside an environment: its recommended labels and the subset
/// that selects its pods.
pub struct App<'a> {
    pub platform: &'a Platform,
    /// `app.kubernetes.io/name`, e.g. `kafka`.
    pub name: &'a str,
    /// `app.kubernetes.io/component`: the component module that builds it.
    pub component: &'static str,
}

pub const PART_OF: &str = "ehs-platform";
pub const MANAGED_BY: &str = "ehs";

impl App<'_> {
    /// Labels that select this application's pods; they never change after the first deploy.
    pub fn selector_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".to_owned(), self.name.to_owned()),
            (
                "app.kubernetes.io/instance".to_owned(),
                self.platform.environment.namespace.to_string(),
            ),
        ])
    }

    /// Kubernetes recommended labels.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.selector_labels();
        labels.extend([
            (
                "app.kubernetes.io/component".to_owned(),
                self.component.to_owned(),
            ),
            ("app.kubernetes.io/part-of".to_owned(), PART_OF.to_owned()),
            (
                "app.kubernetes.io/managed-by".to_owned(),
                MANAGED_BY.to_owned(),
            ),
        ]);
        labels
    }

    pub fn selector(&self) -> LabelSelector {
        LabelSelector {
            match_labels: Some(self.selector_labels()),
            ..Default::default()
        }
    }

    /// Metadata of a namespaced object belonging to this application.
    pub fn metadata(&self, name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(self.platform.environment.namespace.to_string()),
            labels: Some(self.labels()),
            ..Default::default()
        }
    }

    /// Prefers putting this application's pods on different nodes, so one node failure takes
    /// out one replica.
    pub fn spread_across_nodes(&self) -> Affinity {
        spread_across_nodes_matching(self.selector())
    }

    /// A PodDisruptionBudget letting voluntary disruptions (node drains) take one pod at a time.
    pub fn one_at_a_time_disruption_budget(&self) -> PodDisruptionBudget {
        PodDisruptionBudget {
            metadata: self.metadata(self.name),
            spec: Some(PodDisruptionBudgetSpec {
                max_unavailable: Some(IntOrString::Int(1)),
                selector: Some(self.selector()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// Prefers putting the pods `selector` matches on different nodes. Preferred rather than
/// required: a one-node dev cluster still schedules.
pub fn spread_across_nodes_matching(selector: LabelSelector) -> Affinity {
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: PodAffinityTerm {
                        label_selector: Some(selector),
                        topology_key: "kubernetes.io/hostname".to_owned(),
                        ..Default::default()
                    },
                },
            ]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The claim template of a StatefulSet's per-pod volume `name`: the component's size, and the
/// platform's one StorageClass (`storage.className`).
pub fn persistent_volume_claim(
    app: &App,
    name: &str,
    storage: &kafka::Storage,
) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(app.labels()),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
            storage_class_name: Some(app.platform.storage.class_name.to_string()),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    storage.size.to_k8s(),
                )])),
                limits: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Pod-template annotation holding a hash of the configuration, so a config change rolls the pods.
pub const CONFIG_CHECKSUM_ANNOTATION: &str = "ehs-platform.io/config-checksum";

/// Pod-level settings Pod Security "restricted" requires, for an image's non-root user.
pub fn restricted_pod_security(uid: i64) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(uid),
        run_as_group: Some(uid),
        fs_group: Some(uid),
        seccomp_profile: Some(runtime_default_seccomp()),
        ..Default::default()
    }
}

/// Container-level settings Pod Security "restricted" requires, plus a read-only root filesystem.
pub fn restricted_container_security() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            add: None,
        }),
        seccomp_profile: Some(runtime_default_seccomp()),
        ..Default::default()
    }
}

fn runtime_default_seccomp() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".to_owned(),
        localhost_profile: None,
    }
}

/// Size limit of every scratch directory (`emptyDir`): logs and temporary files must not fill
/// the node's disk (Kafka's and HiveMQ's application logs are written there).
const SCRATCH_SIZE_LIMIT: &str = "1Gi";
/// Ephemeral storage of every container: its scratch directories count against it, and its
/// log files, which the kubelet rotates at 50 MiB by default; the root filesystem is read-only.
const EPHEMERAL_STORAGE_REQUEST: &str = "256Mi";
const EPHEMERAL_STORAGE_LIMIT: &str = "2Gi";

pub fn resource_requirements(resources: &Resources) -> ResourceRequirements {
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    let amounts =
        |cpu: &crate::model::Quantity, memory: &crate::model::Quantity, ephemeral_storage: &str| {
            BTreeMap::from([
                ("cpu".to_owned(), cpu.to_k8s()),
                ("memory".to_owned(), memory.to_k8s()),
                (
                    "ephemeral-storage".to_owned(),
                    Quantity(ephemeral_storage.to_owned()),
                ),
            ])
        };
    ResourceRequirements {
        requests: Some(amounts(
            &resources.requests.cpu,
            &resources.requests.memory,
            EPHEMERAL_STORAGE_REQUEST,
        )),
        limits: Some(amounts(
            &resources.limits.cpu,
            &resources.limits.memory,
            EPHEMERAL_STORAGE_LIMIT,
        )),
        ..Default::default()
    }
}

/// A writable scratch directory for a container whose root filesystem is read-only.
pub fn scratch_volume(name: &str, mount_path: &str) -> (Volume, VolumeMount) {
    (
        Volume {
            name: name.to_owned(),
            empty_dir: Some(k8s_openapi::api::core::v1::EmptyDirVolumeSource {
                medium: None,
                size_limit: Some(k8s_openapi::apimachinery::pkg::api::resource::Quantity(
                    SCRATCH_SIZE_LIMIT.to_owned(),
                )),
            }),
            ..Default::default()
        },
        VolumeMount {
            name: name.to_owned(),
            mount_path: mount_path.to_owned(),
            ..Default::default()
        },
    )
}

/// A ConfigMap mounted read-only as a directory of files.
pub fn config_map_volume(config_map: &str, mount_path: &str) -> (Volume, VolumeMount) {
    (
        Volume {
            name: config_map.to_owned(),
            config_map: Some(ConfigMapVolumeSource {
                name: config_map.to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        },
        VolumeMount {
            name: config_map.to_owned(),
            mount_path: mount_path.to_owned(),
            read_only: Some(true),
            ..Default::default()
        },
    )
}

/// Environment variable with a literal value.
pub fn env_var(name: &str, value: impl Into<String>) -> k8s_openapi::api::core::v1::EnvVar {
    k8s_openapi::api::core::v1::EnvVar {
        name: name.to_owned(),
        value: Some(value.into()),
        value_from: None,
    }
}

/// Environment variable filled from a field of the pod itself (downward API).
pub fn pod_field_env_var(name: &str, field_path: &str) -> k8s_openapi::api::core::v1::EnvVar {
    use k8s_openapi::api::core::v1::{EnvVarSource, ObjectFieldSelector};
    k8s_openapi::api::core::v1::EnvVar {
        name: name.to_owned(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field_path.to_owned(),
                api_version: None,
            }),
            ..Default::default()
        }),
    }
}

/// Hex SHA-256 prefix of some text: pod-template annotations that roll pods when their
/// configuration changes, and names of objects that must be replaced when their spec changes.
pub fn short_hash(text: &str, hex_chars: usize) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    hex[..hex_chars.min(hex.len())].to_owned()
}

/// A Job of `app` that runs `container` once to completion. Jobs are immutable, so the name
/// carries a hash of its container, its volumes and `what_it_does` (the scripts and data it
/// runs): a change yields a new Job, an unchanged one is left alone.
pub fn run_once_job(
    app: &App,
    what_it_does: &str,
    uid: i64,
    container: Container,
    volumes: Vec<Volume>,
    backoff_limit: i32,
    active_deadline_seconds: i64,
) -> Job {
    // The whole container and its volumes, not only the image: a Job's pod template cannot be
    // changed in place either (a new security setting or limit needs a new Job too).
    let pod = serde_json::to_string(&(&container, &volumes)).unwrap_or_default();
    let name = format!(
        "{}-{}",
        app.name,
        short_hash(&format!("{pod}\n{what_it_does}"), 8)
    );
    Job {
        metadata: app.metadata(&name),
        spec: Some(JobSpec {
            backoff_limit: Some(backoff_limit),
            active_deadline_seconds: Some(active_deadline_seconds),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(app.labels()),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    // Nothing a run-once Job does calls the Kubernetes API.
                    automount_service_account_token: Some(false),
                    restart_policy: Some("OnFailure".to_owned()),
                    security_context: Some(restricted_pod_security(uid)),
                    containers: vec![container],
                    volumes: Some(volumes),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A named TCP port of a Service, targeting the container port of the same name.
pub fn service_port(name: &str, port: u16) -> ServicePort {
    ServicePort {
        name: Some(name.to_owned()),
        port: i32::from(port),
        target_port: Some(IntOrString::String(name.to_owned())),
        protocol: Some("TCP".to_owned()),
        ..Default::default()
    }
}

/// A named TCP container port.
pub fn container_port(name: &str, port: u16) -> ContainerPort {
    ContainerPort {
        name: Some(name.to_owned()),
        container_port: i32::from(port),
        protocol: Some("TCP".to_owned()),
        ..Default::default()
    }
}

/// A replica count as Kubernetes' `int32`.
pub fn count_i32(count: Count) -> i32 {
    i32::try_from(count.get()).unwrap_or(i32::MAX)
}

/// Common container defaults for our workloads.
/// An HTTP GET probe of `path` on the container port named `port_name`.
pub fn http_probe(
    path: &str,
    port_name: &str,
    period_seconds: i32,
    failure_threshold: i32,
    timeout_seconds: i32,
) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String(port_name.to_owned()),
            ..Default::default()
        }),
        period_seconds: Some(period_seconds),
        failure_threshold: Some(failure_threshold),
        timeout_seconds: Some(timeout_seconds),
        ..Default::default()
    }
}

pub fn restricted_container(name: &str, image: String, resources: &Resources) -> Container {
    Container {
        name: name.to_owned(),
        image: Some(image),
        // Tags can move: pull on every start so a pod runs what the tag names now.
        image_pull_policy: Some("Always".to_owned()),
        security_context: Some(restricted_container_security()),
        resources: Some(resource_requirements(resources)),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use crate::load::defaults_path;
    use crate::resolve::tests::{platform, repo, templates};

    #[test]
    fn every_component_has_defaults_and_an_overrides_field_in_the_environment_schema() {
        let schema =
            serde_json::to_value(schemars::schema_for!(crate::model::Environment)).unwrap();
        let descriptions: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .values()
            .filter_map(|property| property["description"].as_str())
            .filter(|description| description.starts_with("Overrides of "))
            .collect();
        assert_eq!(descriptions.len(), super::ALL.len(), "{descriptions:?}");
        for component in super::ALL {
            let defaults = defaults_path(component.name);
            assert!(repo().root.join(&defaults).is_file(), "{defaults}");
            let expected = format!("Overrides of `{defaults}`.");
            assert!(descriptions.contains(&expected.as_str()), "{expected}");
        }
    }

    #[test]
    fn every_object_has_the_recommended_labels_and_its_environment_namespace() {
        for environment in ["dev", "prod"] {
            let platform = platform(environment);
            let namespace = platform.environment.namespace.to_string();
            for object in super::build_all(&platform, &templates()).unwrap() {
                let labels = &object.value["metadata"]["labels"];
                for key in ["name", "instance", "component", "part-of", "managed-by"] {
                    let label = format!("app.kubernetes.io/{key}");
                    assert!(
                        labels[&label].is_string(),
                        "{}/{} lacks {label}",
                        object.kind(),
                        object.name()
                    );
                }
                assert_eq!(labels["app.kubernetes.io/managed-by"], super::MANAGED_BY);
                assert_eq!(labels["app.kubernetes.io/part-of"], super::PART_OF);
                let own_namespaces: Vec<String> = super::ALL
                    .iter()
                    .flat_map(|component| (component.namespaces)(&platform))
                    .collect();
                if object.component == "security"
                    && own_namespaces
                        .iter()
                        .any(|own| Some(own.as_str()) == object.namespace())
                {
                    // Default-deny and flows of the namespaces components add.
                    assert!(object.name().starts_with(&namespace), "{}", object.name());
                } else if object.component == "storage" {
                    // The provisioner's own namespace and cluster-scoped objects: the
                    // environment's namespace is in their names.
                    let name = object.namespace().unwrap_or(object.name());
                    assert!(name.starts_with(&namespace) || object.kind() == "StorageClass");
                } else if object.component == super::gitops::NAME {
                    // Argo CD's and Flux's objects live in the tools' own namespaces.
                    let tools =
                        <super::gitops::Hooks as super::ComponentHooks>::tool_namespaces(&platform);
                    assert!(tools.iter().any(|tool| object.namespace() == Some(tool)));
                } else if object.kind() == "Namespace" {
                    assert_eq!(object.name(), namespace);
                } else if object.kind() == "ClusterIssuer" {
                    // Cluster-scoped: the environment's namespace is in its name instead.
                    assert_eq!(object.namespace(), None);
                    assert!(object.name().starts_with(&namespace), "{}", object.name());
                } else {
                    assert_eq!(
                        object.namespace(),
                        Some(namespace.as_str()),
                        "{}/{}",
                        object.kind(),
                        object.name()
                    );
                }
            }
        }
    }
}
