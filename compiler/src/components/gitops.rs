//! GitOps delivery: the Argo CD and Flux definitions that sync `rendered/<env>/` from this
//! repository in the order of the components' stages, after installing the upstream operators
//! at the versions of `components/upstream.yaml`.
//!
//! Its objects go to `rendered/<env>/gitops/` and are left out of the environment's own
//! `kustomization.yaml`, so the environment's sync never applies the definitions that drive it.
//! A root object, applied once by hand (the bootstrap), syncs the folder:
//!
//! - Argo CD: the root Application `<namespace>-gitops` (in Argo CD's `default` project, which
//!   every installation has) syncs the AppProjects and Applications of the folder, except
//!   itself. In its sync waves: the projects, the CRD-only operators (Gateway API, Envoy
//!   Gateway's CRDs), the other operators, then the environment's Application, whose objects
//!   carry the sync waves of their components' stages.
//! - Flux: the GitRepository `<namespace>` (an artifact of only `rendered/<env>/`, without Argo
//!   CD's objects and the Flux root itself) and the root Kustomization `<namespace>-gitops`,
//!   which applies the operators (HelmReleases of their charts, Kustomizations of their Git
//!   tags, ordered by `dependsOn`) and one Kustomization per component, each depending on the
//!   components of the stage before, the first stage on the root, which is ready once the
//!   operators are.
//!
//! Production (`production: true`, which also picks Let's Encrypt's production directory) is
//! synced by hand in Argo CD: no automated sync, prune or self-heal.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{NamespaceResourceScope, Resource};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{manifest, synced_objects, App, ComponentError, ComponentHooks, Stage};
use super::{exposure, ALL, SYNC_WAVE_ANNOTATION};
use crate::load::RENDERED_DIR;
use crate::manifest::Manifest;
use crate::model::DnsLabel;
use crate::resolve::Platform;
use crate::templates::Templates;
use crate::upstream::{Prerequisite, PrerequisiteKind};
use crate::validate::{KindSchema, Report};

pub const NAME: &str = "gitops";

/// Overridable GitOps settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "GitopsSettings")]
pub struct Layer {
    /// The Git repository holding `rendered/`, as the GitOps controller clones it: an https://
    /// or ssh:// URL. The Argo CD projects admit only this repository.
    pub repository_url: Option<String>,
    /// The branch Argo CD (`targetRevision`) and Flux (`ref.branch`) follow.
    pub branch: Option<String>,
    /// Argo CD definitions.
    pub argocd: Option<ToolLayer>,
    /// Flux definitions.
    pub flux: Option<ToolLayer>,
    /// Install the upstream operators of `components/upstream.yaml` (Argo CD Applications, Flux
    /// HelmReleases and Kustomizations). They are cluster-wide: in a cluster shared by several
    /// environments, exactly one sets this.
    pub install_operators: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "GitopsTool")]
pub struct ToolLayer {
    /// Render this tool's definitions.
    pub enabled: Option<bool>,
    /// The namespace the tool is installed in (its objects must live there).
    pub namespace: Option<DnsLabel>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub repository_url: String,
    pub branch: String,
    pub argocd: Tool,
    pub flux: Tool,
    pub install_operators: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    pub enabled: bool,
    pub namespace: DnsLabel,
}

/// The cluster the GitOps controller runs in, as Argo CD names it.
const IN_CLUSTER: &str = "https://kubernetes.default.svc";
/// How often Flux looks for new commits and re-applies (reverting drift).
const FLUX_INTERVAL: &str = "5m";

custom_resource! {
    /// Argo CD's `AppProject`: what its Applications may deploy, from where, to where.
    AppProject(AppProjectSpec): "argoproj.io" / "v1alpha1", "appprojects", NamespaceResourceScope
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AppProjectSpec {
    pub description: String,
    pub source_repos: Vec<String>,
    pub destinations: Vec<Destination>,
    pub cluster_resource_whitelist: Vec<GroupKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_resource_whitelist: Option<Vec<GroupKind>>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupKind {
    pub group: String,
    pub kind: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Destination {
    pub server: String,
    pub namespace: String,
}

custom_resource! {
    /// Argo CD's `Application`: one source synced to one destination.
    Application(ApplicationSpec): "argoproj.io" / "v1alpha1", "applications", NamespaceResourceScope
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApplicationSpec {
    pub project: String,
    pub source: ApplicationSource,
    pub destination: Destination,
    pub sync_policy: SyncPolicy,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApplicationSource {
    #[serde(rename = "repoURL")]
    pub repo_url: String,
    pub target_revision: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm: Option<HelmSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<DirectorySource>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HelmSource {
    pub release_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_crds: Option<bool>,
    /// Chart values, as the chart defines them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_object: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DirectorySource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SyncPolicy {
    /// Unset: synced only when someone presses Sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automated: Option<AutomatedSync>,
    pub sync_options: Vec<String>,
    pub retry: Retry,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AutomatedSync {
    pub prune: bool,
    pub self_heal: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Retry {
    pub limit: i64,
    pub backoff: Backoff,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Backoff {
    pub duration: String,
    pub factor: i64,
    pub max_duration: String,
}

custom_resource! {
    /// Flux's `GitRepository`: a Git source, fetched into an artifact Kustomizations apply from.
    GitRepository(GitRepositorySpec): "source.toolkit.fluxcd.io" / "v1", "gitrepositories", NamespaceResourceScope
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GitRepositorySpec {
    pub url: String,
    #[serde(rename = "ref")]
    pub reference: GitReference,
    pub interval: String,
    /// gitignore-style patterns of what the artifact leaves out.
    pub ignore: String,
}

/// A branch (the environment's source) or a tag (an upstream prerequisite at its pin).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GitReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

custom_resource! {
    /// Flux's `Kustomization`: applies (and prunes) one path of a source.
    Kustomization(KustomizationSpec): "kustomize.toolkit.fluxcd.io" / "v1", "kustomizations", NamespaceResourceScope
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KustomizationSpec {
    pub interval: String,
    pub path: String,
    pub prune: bool,
    pub source_ref: SourceReference,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<DependencyReference>,
    /// Ready only once everything it applied is ready (an operator's Deployments, CRDs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<bool>,
    /// Ready only once these objects (applied by it or not) are ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_checks: Vec<HealthCheck>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthCheck {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SourceReference {
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DependencyReference {
    pub name: String,
}

custom_resource! {
    /// Flux's `HelmRepository`: a Helm chart repository served over HTTPS (an `index.yaml`).
    HelmRepository(HelmRepositorySpec): "source.toolkit.fluxcd.io" / "v1", "helmrepositories", NamespaceResourceScope
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HelmRepositorySpec {
    pub url: String,
    pub interval: String,
}

custom_resource! {
    /// Flux's `OCIRepository`: one artifact of an OCI registry, here a Helm chart at its tag
    /// (Flux's way to install `oci://` charts, referenced by a HelmRelease's `chartRef`).
    OCIRepository(OciRepositorySpec): "source.toolkit.fluxcd.io" / "v1", "ocirepositories", NamespaceResourceScope
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OciRepositorySpec {
    /// `oci://host/path`: the chart without its tag.
    pub url: String,
    #[serde(rename = "ref")]
    pub reference: OciReference,
    pub interval: String,
    pub layer_selector: LayerSelector,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OciReference {
    pub tag: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LayerSelector {
    pub media_type: String,
    pub operation: String,
}

/// The layer of a Helm chart pushed to an OCI registry (`helm push`): its packaged chart.
const HELM_CHART_LAYER: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

custom_resource! {
    /// Flux's `HelmRelease`: one Helm release of a chart from a HelmRepository or OCIRepository.
    HelmRelease(HelmReleaseSpec): "helm.toolkit.fluxcd.io" / "v2", "helmreleases", NamespaceResourceScope
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HelmReleaseSpec {
    pub interval: String,
    /// The Helm release name; Flux's default would prefix the target namespace.
    pub release_name: String,
    pub target_namespace: String,
    /// A chart of a HelmRepository, by name and exact version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<HelmChartTemplate>,
    /// A chart that is the source itself (an OCIRepository at the pinned tag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart_ref: Option<SourceReference>,
    pub install: HelmInstall,
    pub upgrade: HelmUpgrade,
    /// HelmReleases installed first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<DependencyReference>,
    /// Chart values, as the chart defines them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HelmChartTemplate {
    pub spec: HelmChartTemplateSpec,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HelmChartTemplateSpec {
    pub chart: String,
    pub version: String,
    pub source_ref: SourceReference,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HelmInstall {
    pub create_namespace: bool,
    pub crds: CrdPolicy,
    pub remediation: Remediation,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HelmUpgrade {
    pub crds: CrdPolicy,
    pub remediation: Remediation,
}

/// What Helm does with the chart's `crds/` folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CrdPolicy {
    /// Another release installs them.
    Skip,
    /// Created and, on upgrades, replaced: what Argo CD does with them on every sync.
    CreateReplace,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Remediation {
    pub retries: i64,
}

/// An upstream operator both tools install: its key in `components/upstream.yaml`, the name of
/// its Application (and of its Flux objects), the namespace it runs in and its wave: the sync
/// wave of its Application in the root, and for Flux the `dependsOn` order (CRD-only installs
/// before the operators that watch those CRDs).
struct Operator {
    key: &'static str,
    name: &'static str,
    namespace: &'static str,
    wave: usize,
    /// Whether the environment needs it.
    needed: fn(&Platform) -> bool,
    /// Chart values (Helm charts), from the model: the one definition of them, which Argo CD's
    /// Application (`helm.valuesObject`) and Flux's HelmRelease (`values`) both carry.
    values: fn(&Platform) -> Option<Value>,
    /// Leave the chart's `crds/` out: another Application installs them.
    skip_crds: bool,
}

fn always(_: &Platform) -> bool {
    true
}

fn no_values(_: &Platform) -> Option<Value> {
    None
}

fn gateway_mode(platform: &Platform) -> bool {
    platform.exposure.mode == exposure::Mode::Gateway
}

const OPERATORS: [Operator; 6] = [
    Operator {
        key: "gatewayApi",
        name: "gateway-api",
        // Only cluster-scoped objects; Argo CD still wants a destination namespace.
        namespace: "kube-system",
        wave: 1,
        needed: gateway_mode,
        values: no_values,
        skip_crds: false,
    },
    Operator {
        key: "envoyGatewayCrds",
        name: "envoy-gateway-crds",
        namespace: "envoy-gateway-system",
        wave: 1,
        needed: gateway_mode,
        values: |_| {
            Some(json!({"crds": {"gatewayAPI": {"enabled": false}, "envoyGateway": {"enabled": true}}}))
        },
        skip_crds: false,
    },
    Operator {
        key: "certManager",
        name: "cert-manager",
        // Also the cluster resource namespace the DNS-01 token Secret must be in.
        namespace: "cert-manager",
        wave: 2,
        needed: |platform| platform.certificates.enabled,
        values: |platform| {
            Some(json!({
                "crds": {"enabled": true},
                "config": {
                    "apiVersion": "controller.config.cert-manager.io/v1alpha1",
                    "kind": "ControllerConfiguration",
                    // HTTP-01 challenges are answered through the environment's Gateway.
                    "enableGatewayAPI": gateway_mode(platform),
                },
            }))
        },
        skip_crds: false,
    },
    Operator {
        key: "cloudNativePg",
        name: "cloudnative-pg",
        namespace: "cnpg-system",
        wave: 2,
        needed: always,
        values: no_values,
        skip_crds: false,
    },
    Operator {
        key: "envoyGateway",
        name: "envoy-gateway",
        namespace: "envoy-gateway-system",
        wave: 2,
        needed: gateway_mode,
        values: no_values,
        skip_crds: true,
    },
    Operator {
        key: "hivemqPlatformOperator",
        name: "hivemq-platform-operator",
        namespace: "hivemq-platform-operator",
        wave: 2,
        needed: always,
        values: no_values,
        skip_crds: false,
    },
];

/// Root waves: the projects first, the operators in their waves, the environment last.
const PROJECT_WAVE: usize = 0;
const ENVIRONMENT_WAVE: usize = 3;

/// Cluster-scoped kinds upstream operators install (their CRDs, RBAC, admission webhooks and
/// policies, CloudNativePG's namespace). Not derivable from our objects, since no upstream
/// manifest is copied here; a kind an upstream bump adds shows as a sync error naming it.
const OPERATOR_CLUSTER_KINDS: [(&str, &str); 8] = [
    ("", "Namespace"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
];

/// Names of the objects, shared by the definitions that refer to each other.
pub fn root_name(platform: &Platform) -> String {
    format!("{}-gitops", platform.environment.namespace)
}

fn environment_name(platform: &Platform) -> String {
    platform.environment.namespace.to_string()
}

const OPERATORS_PROJECT: &str = "ehs-operators";

/// `rendered/<env>` and the folder of these definitions, relative to the repository root.
fn rendered_path(platform: &Platform) -> String {
    format!("{RENDERED_DIR}/{}", platform.environment.name)
}

fn own_path(platform: &Platform) -> String {
    format!("{}/{NAME}", rendered_path(platform))
}

/// The file `emit` writes an object of this component to, relative to its folder.
fn file_name(kind: &str, name: &str) -> String {
    format!("{}-{name}.yaml", kind.to_lowercase())
}

pub fn build(platform: &Platform, templates: &Templates) -> Result<Vec<Manifest>, ComponentError> {
    let settings = &platform.gitops;
    if !settings.argocd.enabled && !settings.flux.enabled {
        return Ok(Vec::new());
    }
    let synced = synced_objects(platform, templates)?;
    let mut objects = Vec::new();
    if settings.argocd.enabled {
        objects.extend(argocd(platform, &synced)?);
    }
    if settings.flux.enabled {
        objects.extend(flux(platform, &synced)?);
    }
    Ok(objects)
}

fn app<'a>(platform: &'a Platform, name: &'a str) -> App<'a> {
    App {
        platform,
        name,
        component: NAME,
    }
}

/// `(group, kind)` of an object.
fn group_kind(object: &Manifest) -> GroupKind {
    let group = object
        .api_version()
        .rsplit_once('/')
        .map_or("", |(group, _)| group);
    GroupKind {
        group: group.to_owned(),
        kind: object.kind().to_owned(),
    }
}

/// Everything Argo CD needs: the projects, the operators' Applications, the environment's
/// Application and the root that syncs them.
fn argocd(platform: &Platform, synced: &[Manifest]) -> Result<Vec<Manifest>, ComponentError> {
    let settings = &platform.gitops;
    let namespace = settings.argocd.namespace.to_string();
    let production = platform.environment.production;
    let argocd_app = app(platform, "argocd");
    let metadata = |name: &str, wave: usize| {
        let mut metadata = argocd_app.metadata(name);
        metadata.namespace = Some(namespace.clone());
        metadata.annotations = Some(BTreeMap::from([(
            SYNC_WAVE_ANNOTATION.to_owned(),
            wave.to_string(),
        )]));
        metadata
    };

    let cluster_kinds: BTreeSet<GroupKind> = synced
        .iter()
        .filter(|object| object.namespace().is_none())
        .map(group_kind)
        .collect();
    let namespaced_kinds: BTreeSet<GroupKind> = synced
        .iter()
        .filter(|object| object.namespace().is_some())
        .map(group_kind)
        .collect();
    let namespaces: BTreeSet<&str> = synced
        .iter()
        .filter_map(|object| match object.kind() {
            "Namespace" => Some(object.name()),
            _ => object.namespace(),
        })
        .collect();
    let project = AppProject::new(
        metadata(&environment_name(platform), PROJECT_WAVE),
        AppProjectSpec {
            description: format!(
                "EHS environment {}: rendered/{} of this repository only",
                platform.environment.name, platform.environment.name
            ),
            source_repos: vec![settings.repository_url.clone()],
            destinations: namespaces
                .iter()
                .map(|namespace| in_cluster(namespace))
                .collect(),
            cluster_resource_whitelist: cluster_kinds.into_iter().collect(),
            namespace_resource_whitelist: Some(namespaced_kinds.into_iter().collect()),
        },
    );
    let mut objects = vec![manifest(NAME, &project)?];

    if settings.install_operators {
        let operators = needed_operators(platform)?;
        let project = AppProject::new(
            metadata(OPERATORS_PROJECT, PROJECT_WAVE),
            AppProjectSpec {
                description: "Upstream operators at the versions of components/upstream.yaml"
                    .to_owned(),
                source_repos: operators
                    .iter()
                    .map(|(_, prerequisite)| source(prerequisite).repo_url)
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect(),
                destinations: operators
                    .iter()
                    .map(|(operator, _)| operator.namespace)
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .map(in_cluster)
                    .collect(),
                cluster_resource_whitelist: OPERATOR_CLUSTER_KINDS
                    .iter()
                    .map(|(group, kind)| GroupKind {
                        group: (*group).to_owned(),
                        kind: (*kind).to_owned(),
                    })
                    .collect(),
                // Upstream charts render whatever namespaced kinds they need.
                namespace_resource_whitelist: None,
            },
        );
        objects.push(manifest(NAME, &project)?);
        for (operator, prerequisite) in operators {
            let mut source = source(prerequisite);
            if let Some(helm) = &mut source.helm {
                helm.release_name = operator.name.to_owned();
                helm.values_object = (operator.values)(platform);
                helm.skip_crds = operator.skip_crds.then_some(true);
            }
            let application = Application::new(
                metadata(operator.name, operator.wave),
                ApplicationSpec {
                    project: OPERATORS_PROJECT.to_owned(),
                    source,
                    destination: in_cluster(operator.namespace),
                    sync_policy: sync_policy(production, &["CreateNamespace=true"]),
                },
            );
            objects.push(manifest(NAME, &application)?);
        }
    }

    let environment = Application::new(
        metadata(&environment_name(platform), ENVIRONMENT_WAVE),
        ApplicationSpec {
            project: environment_name(platform),
            source: git_source(settings, rendered_path(platform), None),
            destination: in_cluster(platform.environment.namespace.as_ref()),
            sync_policy: sync_policy(production, &[]),
        },
    );
    objects.push(manifest(NAME, &environment)?);

    // Applied by the bootstrap and left out of what it syncs, so it never syncs itself.
    let mut root_metadata = argocd_app.metadata(&root_name(platform));
    root_metadata.namespace = Some(namespace.clone());
    let root = Application::new(
        root_metadata,
        ApplicationSpec {
            project: "default".to_owned(),
            source: git_source(
                settings,
                own_path(platform),
                Some(DirectorySource {
                    include: Some(format!(
                        "{{{},{}}}",
                        file_name("AppProject", "*"),
                        file_name("Application", "*")
                    )),
                    exclude: Some(file_name("Application", &root_name(platform))),
                }),
            ),
            destination: in_cluster(&namespace),
            sync_policy: sync_policy(production, &[]),
        },
    );
    objects.push(manifest(NAME, &root)?);
    Ok(objects)
}

fn in_cluster(namespace: &str) -> Destination {
    Destination {
        server: IN_CLUSTER.to_owned(),
        namespace: namespace.to_owned(),
    }
}

fn git_source(
    settings: &Settings,
    path: String,
    directory: Option<DirectorySource>,
) -> ApplicationSource {
    ApplicationSource {
        repo_url: settings.repository_url.clone(),
        target_revision: settings.branch.clone(),
        path: Some(path),
        chart: None,
        helm: None,
        directory,
    }
}

/// Automated with prune and self-heal outside production; production waits for a person to
/// press Sync. Server-side apply everywhere: CRDs too large for the last-applied annotation, and
/// the same apply the API-server tests use.
fn sync_policy(production: bool, extra_options: &[&str]) -> SyncPolicy {
    let mut sync_options = vec!["ServerSideApply=true".to_owned()];
    sync_options.extend(extra_options.iter().map(|option| (*option).to_owned()));
    SyncPolicy {
        automated: (!production).then_some(AutomatedSync {
            prune: true,
            self_heal: true,
        }),
        sync_options,
        // Objects of a custom kind fail until their operator's CRDs exist; retrying lets a first
        // sync converge once the operators' Applications have installed them.
        retry: Retry {
            limit: 10,
            backoff: Backoff {
                duration: "10s".to_owned(),
                factor: 2,
                max_duration: "5m".to_owned(),
            },
        },
    }
}

/// The operators the environment needs, with their pins; a missing pin is an error.
fn needed_operators(
    platform: &Platform,
) -> Result<Vec<(&'static Operator, &Prerequisite)>, ComponentError> {
    OPERATORS
        .iter()
        .filter(|operator| (operator.needed)(platform))
        .map(|operator| {
            platform
                .upstream
                .prerequisites
                .get(operator.key)
                .map(|prerequisite| (operator, prerequisite))
                .ok_or_else(|| ComponentError::Model {
                    component: NAME,
                    message: format!(
                        "components/upstream.yaml has no prerequisite `{}` to install {} from",
                        operator.key, operator.name
                    ),
                })
        })
        .collect()
}

/// Where a prerequisite is installed from, read once for both tools.
enum Origin {
    /// A chart of a Helm repository served over HTTPS.
    HelmRepository { url: String, chart: String },
    /// A chart pushed to an OCI registry: `url` is `oci://<repository>/<chart>`.
    Oci {
        url: String,
        repository: String,
        chart: String,
    },
    /// Manifests in a Git repository at the version's tag: the folder `path`, and in it only
    /// the files matching `include`.
    Git {
        repository: String,
        path: String,
        include: Option<String>,
    },
}

fn origin(prerequisite: &Prerequisite) -> Origin {
    match (prerequisite.kind, &prerequisite.chart, &prerequisite.git) {
        (PrerequisiteKind::HelmChart, Some(chart), _) => match chart.strip_prefix("oci://") {
            Some(reference) => {
                let (repository, name) = reference
                    .rsplit_once('/')
                    .unwrap_or((reference, chart.as_str()));
                Origin::Oci {
                    url: chart.clone(),
                    repository: repository.to_owned(),
                    chart: name.to_owned(),
                }
            }
            None => Origin::HelmRepository {
                url: prerequisite.source.clone(),
                chart: chart.clone(),
            },
        },
        (_, _, git) => Origin::Git {
            repository: git
                .as_ref()
                .map_or(prerequisite.source.clone(), |git| git.repository.clone()),
            path: git.as_ref().map_or(".".to_owned(), |git| git.path.clone()),
            include: prerequisite.git_include(),
        },
    }
}

/// Where Argo CD fetches a prerequisite: its Helm chart (an `oci://` chart as Argo CD names OCI
/// Helm repositories, without the scheme) or its Git tag.
fn source(prerequisite: &Prerequisite) -> ApplicationSource {
    let version = prerequisite.version.clone();
    match origin(prerequisite) {
        Origin::HelmRepository { url, chart }
        | Origin::Oci {
            repository: url,
            chart,
            ..
        } => ApplicationSource {
            repo_url: url,
            target_revision: version,
            path: None,
            chart: Some(chart),
            helm: Some(HelmSource {
                release_name: String::new(),
                skip_crds: None,
                values_object: None,
            }),
            directory: None,
        },
        Origin::Git {
            repository,
            path,
            include,
        } => ApplicationSource {
            repo_url: repository,
            target_revision: version,
            path: Some(path),
            chart: None,
            helm: None,
            directory: Some(DirectorySource {
                include,
                exclude: None,
            }),
        },
    }
}

/// gitignore lines that leave only the folder `path` of a repository in a GitRepository's
/// artifact, and in it only the files matching `include`.
fn only(path: &str, include: Option<&str>) -> Vec<String> {
    let mut lines = Vec::new();
    let mut prefix = String::new();
    for part in path.split('/').filter(|part| !part.is_empty() && *part != ".") {
        lines.push(format!("{prefix}/*"));
        prefix = format!("{prefix}/{part}");
        lines.push(format!("!{prefix}/"));
    }
    if let Some(include) = include {
        lines.push(format!("{prefix}/*"));
        lines.push(format!("!{prefix}/{include}"));
    }
    lines
}

/// How often Flux checks an upstream source: a pinned chart version or tag never moves.
const UPSTREAM_INTERVAL: &str = "1h";
/// How many times Flux retries a failed install or upgrade of an operator, as Argo CD does.
const RETRIES: i64 = 10;

/// The operators for Flux, at the pins Argo CD installs them from: each Helm chart as a
/// HelmRepository (or OCIRepository) and a HelmRelease with the same values as its Application,
/// each Git tag as a GitRepository and a Kustomization. Returns them and the health checks that
/// are ready once every operator is.
fn flux_operators(
    platform: &Platform,
    metadata: &dyn Fn(&str) -> ObjectMeta,
) -> Result<(Vec<Manifest>, Vec<HealthCheck>), ComponentError> {
    let operators = needed_operators(platform)?;
    let namespace = platform.gitops.flux.namespace.to_string();
    let is_helm = |prerequisite: &Prerequisite| !matches!(origin(prerequisite), Origin::Git { .. });
    let mut objects = Vec::new();
    let mut checks = Vec::new();
    for (operator, prerequisite) in &operators {
        // Flux's `dependsOn` names objects of its own kind only: a HelmRelease waits for the
        // HelmReleases of the earlier waves, a Git install for the Git installs of the earlier
        // waves (README, "Deploy with Argo CD / Flux").
        let earlier = |helm: bool| -> Vec<DependencyReference> {
            operators
                .iter()
                .filter(|(other, pin)| other.wave < operator.wave && is_helm(pin) == helm)
                .map(|(other, _)| DependencyReference {
                    name: other.name.to_owned(),
                })
                .collect()
        };
        let version = prerequisite.version.clone();
        let release = |chart: Option<HelmChartTemplate>, chart_ref: Option<SourceReference>| {
            let crds = if operator.skip_crds {
                CrdPolicy::Skip
            } else {
                CrdPolicy::CreateReplace
            };
            HelmRelease::new(
                metadata(operator.name),
                HelmReleaseSpec {
                    interval: FLUX_INTERVAL.to_owned(),
                    release_name: operator.name.to_owned(),
                    target_namespace: operator.namespace.to_owned(),
                    chart,
                    chart_ref,
                    install: HelmInstall {
                        create_namespace: true,
                        crds,
                        remediation: Remediation { retries: RETRIES },
                    },
                    upgrade: HelmUpgrade {
                        crds,
                        remediation: Remediation { retries: RETRIES },
                    },
                    depends_on: earlier(true),
                    values: (operator.values)(platform),
                },
            )
        };
        let check = |kind: &str, api_version: &str| HealthCheck {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            name: operator.name.to_owned(),
            namespace: namespace.clone(),
        };
        match origin(prerequisite) {
            Origin::HelmRepository { url, chart } => {
                let repository = HelmRepository::new(
                    metadata(operator.name),
                    HelmRepositorySpec {
                        url,
                        interval: UPSTREAM_INTERVAL.to_owned(),
                    },
                );
                objects.push(manifest(NAME, &repository)?);
                let chart = HelmChartTemplate {
                    spec: HelmChartTemplateSpec {
                        chart,
                        version,
                        source_ref: SourceReference {
                            kind: HelmRepository::KIND.to_owned(),
                            name: operator.name.to_owned(),
                        },
                    },
                };
                objects.push(manifest(NAME, &release(Some(chart), None))?);
                checks.push(check(HelmRelease::KIND, HelmRelease::API_VERSION));
            }
            Origin::Oci { url, .. } => {
                let repository = OCIRepository::new(
                    metadata(operator.name),
                    OciRepositorySpec {
                        url,
                        reference: OciReference { tag: version },
                        interval: UPSTREAM_INTERVAL.to_owned(),
                        layer_selector: LayerSelector {
                            media_type: HELM_CHART_LAYER.to_owned(),
                            operation: "copy".to_owned(),
                        },
                    },
                );
                objects.push(manifest(NAME, &repository)?);
                let chart_ref = SourceReference {
                    kind: OCIRepository::KIND.to_owned(),
                    name: operator.name.to_owned(),
                };
                objects.push(manifest(NAME, &release(None, Some(chart_ref)))?);
                checks.push(check(HelmRelease::KIND, HelmRelease::API_VERSION));
            }
            Origin::Git {
                repository,
                path,
                include,
            } => {
                let mut ignore = only(&path, include.as_deref()).join("\n");
                if !ignore.is_empty() {
                    ignore.push('\n');
                }
                let source = GitRepository::new(
                    metadata(operator.name),
                    GitRepositorySpec {
                        url: repository,
                        reference: GitReference {
                            branch: None,
                            tag: Some(version),
                        },
                        interval: UPSTREAM_INTERVAL.to_owned(),
                        ignore,
                    },
                );
                objects.push(manifest(NAME, &source)?);
                let kustomization = Kustomization::new(
                    metadata(operator.name),
                    KustomizationSpec {
                        interval: FLUX_INTERVAL.to_owned(),
                        path: format!("./{}", path.trim_start_matches("./")),
                        prune: true,
                        source_ref: SourceReference {
                            kind: GitRepository::KIND.to_owned(),
                            name: operator.name.to_owned(),
                        },
                        depends_on: earlier(false),
                        wait: Some(true),
                        health_checks: Vec::new(),
                    },
                );
                objects.push(manifest(NAME, &kustomization)?);
                checks.push(check(Kustomization::KIND, Kustomization::API_VERSION));
            }
        }
    }
    Ok((objects, checks))
}

/// Flux: the source, the operators, one Kustomization per component in stage order, and the
/// root.
fn flux(platform: &Platform, synced: &[Manifest]) -> Result<Vec<Manifest>, ComponentError> {
    let settings = &platform.gitops;
    let namespace = settings.flux.namespace.to_string();
    let flux_app = app(platform, "flux");
    let metadata = |name: &str| {
        let mut metadata = flux_app.metadata(name);
        metadata.namespace = Some(namespace.clone());
        metadata
    };
    let source_name = environment_name(platform);
    let root = root_name(platform);
    let environment = rendered_path(platform);
    let own = own_path(platform);
    let mut ignore = vec![
        "# Only this environment's rendered files, without Argo CD's definitions and the Flux"
            .to_owned(),
        "# root (applied by the bootstrap, so the root never applies itself).".to_owned(),
    ];
    ignore.extend(only(&environment, None));
    ignore.extend([
        format!("/{own}/{}", file_name("AppProject", "*")),
        format!("/{own}/{}", file_name("Application", "*")),
        format!("/{own}/{}", file_name("GitRepository", &source_name)),
        format!("/{own}/{}", file_name("Kustomization", &root)),
    ]);
    let repository = GitRepository::new(
        metadata(&source_name),
        GitRepositorySpec {
            url: settings.repository_url.clone(),
            reference: GitReference {
                branch: Some(settings.branch.clone()),
                tag: None,
            },
            interval: FLUX_INTERVAL.to_owned(),
            ignore: ignore.join("\n") + "\n",
        },
    );
    let kustomization = |name: &str,
                         path: &str,
                         depends_on: Vec<DependencyReference>,
                         health_checks: Vec<HealthCheck>| {
        Kustomization::new(
            metadata(name),
            KustomizationSpec {
                interval: FLUX_INTERVAL.to_owned(),
                path: format!("./{path}"),
                prune: true,
                source_ref: SourceReference {
                    kind: GitRepository::KIND.to_owned(),
                    name: source_name.clone(),
                },
                depends_on,
                wait: None,
                health_checks,
            },
        )
    };

    let (operators, checks) = if settings.install_operators {
        flux_operators(platform, &metadata)?
    } else {
        (Vec::new(), Vec::new())
    };
    // A Kustomization's `dependsOn` names only Kustomizations, so the environment cannot wait
    // for the operators' HelmReleases directly: the root, which applies them, is ready once
    // they are (its health checks), and the environment's first stage depends on the root.
    let after_operators = if checks.is_empty() {
        Vec::new()
    } else {
        vec![DependencyReference { name: root.clone() }]
    };
    let mut objects = vec![
        manifest(NAME, &repository)?,
        manifest(NAME, &kustomization(&root, &own, Vec::new(), checks))?,
    ];
    objects.extend(operators);
    let rendered: BTreeSet<&str> = synced
        .iter()
        .map(|object| object.component.as_str())
        .collect();
    let mut previous: Vec<String> = Vec::new();
    for stage in Stage::SYNCED {
        let components: Vec<&str> = ALL
            .iter()
            .filter(|component| (component.stage)() == stage)
            .map(|component| component.name)
            .filter(|name| rendered.contains(name))
            .collect();
        if components.is_empty() {
            continue;
        }
        let mut names = Vec::new();
        for component in &components {
            let name = format!("{source_name}-{component}");
            // The stage before (the operators, for the first), and any component of this stage
            // that renders a namespace this one puts objects in (the security component's
            // policies in the provisioner's namespace): Flux would fail to apply them until
            // that namespace exists.
            let stage_before: Vec<DependencyReference> = if previous.is_empty() {
                after_operators.clone()
            } else {
                previous
                    .iter()
                    .map(|name| DependencyReference { name: name.clone() })
                    .collect()
            };
            let depends_on = stage_before
                .into_iter()
                .chain(
                    components
                        .iter()
                        .filter(|other| {
                            *other != component
                                && namespaces_used(synced, component)
                                    .intersection(&namespaces_rendered(synced, other))
                                    .next()
                                    .is_some()
                        })
                        .map(|other| DependencyReference {
                            name: format!("{source_name}-{other}"),
                        }),
                )
                .collect();
            objects.push(manifest(
                NAME,
                &kustomization(
                    &name,
                    &format!("{environment}/{component}"),
                    depends_on,
                    Vec::new(),
                ),
            )?);
            names.push(name);
        }
        previous = names;
    }
    Ok(objects)
}

/// The namespaces `component`'s objects are in.
fn namespaces_used<'a>(synced: &'a [Manifest], component: &str) -> BTreeSet<&'a str> {
    synced
        .iter()
        .filter(|object| object.component == component)
        .filter_map(Manifest::namespace)
        .collect()
}

/// The Namespaces `component` renders.
fn namespaces_rendered<'a>(synced: &'a [Manifest], component: &str) -> BTreeSet<&'a str> {
    synced
        .iter()
        .filter(|object| object.component == component && object.kind() == "Namespace")
        .map(Manifest::name)
        .collect()
}

pub struct Hooks;

impl ComponentHooks for Hooks {
    fn stage() -> Stage {
        Stage::Delivery
    }

    fn kinds() -> Vec<KindSchema> {
        vec![
            KindSchema::of::<AppProject>(),
            KindSchema::of::<Application>(),
            KindSchema::of::<GitRepository>(),
            KindSchema::of::<Kustomization>(),
            KindSchema::of::<HelmRepository>(),
            KindSchema::of::<OCIRepository>(),
            KindSchema::of::<HelmRelease>(),
        ]
    }

    fn invariants(platform: &Platform, _objects: &[Manifest], report: &mut Report) {
        let settings = &platform.gitops;
        let url = &settings.repository_url;
        if (settings.argocd.enabled || settings.flux.enabled)
            && !["https://", "http://", "ssh://"]
                .iter()
                .any(|scheme| url.starts_with(scheme))
        {
            report.model(
                format!("{NAME}.repositoryUrl"),
                format!("`{url}` is not a Git URL Argo CD and Flux both clone: use https://… or ssh://…"),
            );
        }
        // The network policies let each operator in from the namespace `security.network`
        // names: an operator installed elsewhere would be denied its instances.
        if settings.argocd.enabled && settings.install_operators {
            let network = &platform.security.network;
            for (key, expected) in [
                ("cloudNativePg", network.cloud_native_pg_namespace.as_ref()),
                ("hivemqPlatformOperator", network.hivemq_operator_namespace.as_ref()),
                ("envoyGateway", network.edge_namespace.as_ref()),
            ] {
                let Some(operator) = OPERATORS
                    .iter()
                    .find(|operator| operator.key == key && (operator.needed)(platform))
                else {
                    continue;
                };
                if operator.namespace != expected {
                    report.model(
                        format!("{NAME}.installOperators"),
                        format!(
                            "Argo CD installs {} in `{}`, but the network policies admit it from \
                             `{expected}` (security.network): set that to `{}`",
                            operator.name, operator.namespace, operator.namespace
                        ),
                    );
                }
            }
        }
        if settings.branch.trim().is_empty() || settings.branch.contains(char::is_whitespace) {
            report.model(
                format!("{NAME}.branch"),
                format!("`{}` is not a branch name", settings.branch),
            );
        }
    }

    fn tool_namespaces(platform: &Platform) -> Vec<String> {
        let settings = &platform.gitops;
        [&settings.argocd, &settings.flux]
            .into_iter()
            .filter(|tool| tool.enabled)
            .map(|tool| tool.namespace.to_string())
            .collect()
    }
}

/// The sync wave an object carries, if any.
#[cfg(test)]
fn wave_of(object: &Manifest) -> Option<&str> {
    object
        .value
        .pointer("/metadata/annotations")
        .and_then(|annotations| annotations.get(SYNC_WAVE_ANNOTATION))
        .and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::build_all;
    use crate::resolve::tests::{platform, templates};
    use crate::validate::validate;

    fn built(environment: &str) -> (Platform, Vec<Manifest>) {
        let platform = platform(environment);
        let objects = build_all(&platform, &templates()).unwrap();
        (platform, objects)
    }

    fn find<'a>(objects: &'a [Manifest], kind: &str, name: &str) -> &'a Manifest {
        objects
            .iter()
            .find(|object| object.kind() == kind && object.name() == name)
            .unwrap_or_else(|| panic!("{kind}/{name}"))
    }

    #[test]
    fn every_synced_object_carries_the_wave_of_its_component_stage() {
        let (_, objects) = built("prod");
        let stage_of = |component: &str| {
            ALL.iter()
                .find(|registered| registered.name == component)
                .map(|registered| (registered.stage)())
                .unwrap()
        };
        for object in objects.iter().filter(|object| object.component != NAME) {
            let expected = stage_of(&object.component).sync_wave().unwrap().to_string();
            assert_eq!(
                wave_of(object),
                Some(expected.as_str()),
                "{}/{}",
                object.kind(),
                object.name()
            );
        }
        let wave = |component: &str| {
            objects
                .iter()
                .find(|object| object.component == component)
                .and_then(wave_of)
                .unwrap()
                .parse::<usize>()
                .unwrap()
        };
        assert!(wave("namespace") < wave("storage"));
        assert_eq!(wave("storage"), wave("certificates"));
        assert!(wave("certificates") < wave("kafka"));
        assert_eq!(wave("kafka"), wave("timescaledb"));
        assert!(wave("timescaledb") < wave("bridge"));
        assert_eq!(wave("bridge"), wave("connect"));
    }

    #[test]
    fn the_project_admits_exactly_what_the_environment_renders() {
        let (platform, objects) = built("dev");
        let project = find(&objects, "AppProject", "ehs-dev");
        let spec = &project.value["spec"];
        assert_eq!(
            spec["sourceRepos"],
            json!([platform.gitops.repository_url.clone()])
        );
        let cluster: Vec<String> = spec["clusterResourceWhitelist"]
            .as_array()
            .unwrap()
            .iter()
            .map(|kind| format!("{}/{}", kind["group"].as_str().unwrap(), kind["kind"].as_str().unwrap()))
            .collect();
        let mut expected: Vec<String> = objects
            .iter()
            .filter(|object| object.component != NAME && object.namespace().is_none())
            .map(|object| {
                let kind = group_kind(object);
                format!("{}/{}", kind.group, kind.kind)
            })
            .collect();
        expected.sort();
        expected.dedup();
        assert_eq!(cluster, expected);
        assert!(cluster.contains(&"cert-manager.io/ClusterIssuer".to_owned()));
        assert!(cluster.contains(&"/Namespace".to_owned()));
        let destinations: Vec<&str> = spec["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|destination| destination["namespace"].as_str().unwrap())
            .collect();
        assert_eq!(destinations, ["ehs-dev", "ehs-dev-storage"]);

        // Without the provisioner, its namespace and cluster-scoped RBAC are no longer admitted.
        let mut platform = platform.clone();
        platform.storage.provisioner = crate::components::storage::Provisioner::None;
        let objects = build(&platform, &templates()).unwrap();
        let spec = &find(&objects, "AppProject", "ehs-dev").value["spec"];
        assert_eq!(spec["destinations"].as_array().unwrap().len(), 1);
        assert!(!spec["clusterResourceWhitelist"]
            .to_string()
            .contains("ClusterRole"));
    }

    #[test]
    fn production_is_synced_by_hand_and_development_automatically() {
        for (environment, automated) in [("dev", true), ("prod", false)] {
            let (platform, objects) = built(environment);
            let namespace = platform.environment.namespace.to_string();
            let application = find(&objects, "Application", &namespace);
            let policy = &application.value["spec"]["syncPolicy"];
            assert_eq!(policy["automated"].is_object(), automated, "{environment}");
            if automated {
                assert_eq!(policy["automated"], json!({"prune": true, "selfHeal": true}));
            }
            assert_eq!(
                application.value["spec"]["source"]["path"],
                format!("rendered/{environment}")
            );
            // The same setting picks Let's Encrypt's production directory.
            let issuer = objects
                .iter()
                .find(|object| object.kind() == "ClusterIssuer")
                .unwrap();
            assert_eq!(
                issuer.value["spec"]["acme"]["server"]
                    == crate::components::certificates::LETS_ENCRYPT_PRODUCTION,
                !automated
            );
        }
    }

    #[test]
    fn operators_are_installed_from_their_pins_before_the_environment() {
        let (platform, objects) = built("dev");
        let pins = &platform.upstream.prerequisites;
        let application = |name: &str| &find(&objects, "Application", name).value;
        let cert_manager = application("cert-manager");
        assert_eq!(cert_manager["spec"]["source"]["chart"], "cert-manager");
        assert_eq!(
            cert_manager["spec"]["source"]["targetRevision"],
            pins["certManager"].version
        );
        assert_eq!(
            cert_manager["spec"]["source"]["helm"]["valuesObject"]["config"]["enableGatewayAPI"],
            true
        );
        let envoy = application("envoy-gateway");
        assert_eq!(envoy["spec"]["source"]["repoURL"], "docker.io/envoyproxy");
        assert_eq!(envoy["spec"]["source"]["chart"], "gateway-helm");
        assert_eq!(envoy["spec"]["source"]["helm"]["skipCrds"], true);
        let cnpg = application("cloudnative-pg");
        assert_eq!(
            cnpg["spec"]["source"]["directory"]["include"],
            format!(
                "cnpg-{}.yaml",
                pins["cloudNativePg"].version.trim_start_matches('v')
            )
        );
        assert_eq!(
            application("gateway-api")["spec"]["source"]["path"],
            "config/crd/standard"
        );
        let wave = |name: &str| {
            wave_of(find(&objects, "Application", name))
                .unwrap()
                .parse::<usize>()
                .unwrap()
        };
        assert!(wave("gateway-api") < wave("cert-manager"));
        assert!(wave("hivemq-platform-operator") < wave("ehs-dev"));
        // Every helm chart and Git tag comes from a repository the operators' project admits.
        let project = &find(&objects, "AppProject", OPERATORS_PROJECT).value["spec"];
        for operator in objects.iter().filter(|object| {
            object.kind() == "Application"
                && object.value["spec"]["project"] == OPERATORS_PROJECT
        }) {
            let repo = &operator.value["spec"]["source"]["repoURL"];
            assert!(
                project["sourceRepos"].as_array().unwrap().contains(repo),
                "{repo}"
            );
        }

        // In a cluster whose operators another environment installs, none are rendered.
        let mut platform = platform.clone();
        platform.gitops.install_operators = false;
        let objects = build(&platform, &templates()).unwrap();
        assert!(!objects
            .iter()
            .any(|object| object.value["spec"]["project"] == OPERATORS_PROJECT
                || object.name() == OPERATORS_PROJECT));
    }

    #[test]
    fn the_root_never_syncs_itself() {
        let (platform, objects) = built("dev");
        let root = find(&objects, "Application", &root_name(&platform));
        let source = &root.value["spec"]["source"];
        assert_eq!(source["path"], "rendered/dev/gitops");
        assert_eq!(
            source["directory"]["exclude"],
            file_name("Application", &root_name(&platform))
        );
        let ignore = find(&objects, "GitRepository", "ehs-dev").value["spec"]["ignore"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(ignore.contains("/rendered/dev/gitops/kustomization-ehs-dev-gitops.yaml\n"));
        assert!(ignore.contains("/rendered/dev/gitops/gitrepository-ehs-dev.yaml\n"));
    }

    /// The environment's kustomization (what its Application syncs) lists every other object
    /// and none of the GitOps definitions, and each definition is applied by exactly one root:
    /// Argo CD's by its root's include glob, Flux's by its root's folder, the roots by hand.
    #[test]
    fn the_environment_sync_leaves_the_definitions_to_their_roots() {
        let (platform, objects) = built("dev");
        let files = crate::emit::render_files("environments/dev.yaml", &objects, &[NAME]).unwrap();
        let kustomization = &files[crate::emit::KUSTOMIZATION];
        for path in files.keys().filter(|path| path.as_str() != crate::emit::KUSTOMIZATION) {
            let listed = kustomization.contains(&format!("- {path}\n"));
            assert_eq!(listed, !path.starts_with("gitops/"), "{path}");
        }
        let root = root_name(&platform);
        for object in objects.iter().filter(|object| object.component == NAME) {
            let file = file_name(object.kind(), object.name());
            let by_argocd = (file.starts_with("application-") || file.starts_with("appproject-"))
                && file != file_name("Application", &root);
            let environment_source =
                object.kind() == "GitRepository" && object.name() == environment_name(&platform);
            let by_flux = [
                "Kustomization",
                "GitRepository",
                "HelmRepository",
                "OCIRepository",
                "HelmRelease",
            ]
            .contains(&object.kind())
                && object.name() != root
                && !environment_source;
            let by_hand = object.name() == root || environment_source;
            assert_eq!(
                [by_argocd, by_flux, by_hand].iter().filter(|applied| **applied).count(),
                1,
                "{file}"
            );
        }
    }

    #[test]
    fn flux_applies_components_in_stage_order() {
        let (_, objects) = built("prod");
        let depends_on = |component: &str| -> Vec<String> {
            let kustomization = find(&objects, "Kustomization", &format!("ehs-prod-{component}"));
            assert_eq!(
                kustomization.value["spec"]["path"],
                format!("./rendered/prod/{component}")
            );
            kustomization.value["spec"]["dependsOn"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|item| item["name"].as_str().unwrap().to_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        // The first stage waits for the root, which is ready once the operators are.
        assert_eq!(depends_on("namespace"), ["ehs-prod-gitops"]);
        assert_eq!(depends_on("storage"), ["ehs-prod-namespace"]);
        assert_eq!(
            depends_on("kafka"),
            [
                "ehs-prod-storage",
                "ehs-prod-exposure",
                "ehs-prod-certificates",
                "ehs-prod-security"
            ]
        );
        // The policies of the provisioner's namespace wait for the component rendering it.
        assert_eq!(
            depends_on("security"),
            ["ehs-prod-namespace", "ehs-prod-storage"]
        );
        assert_eq!(depends_on("exposure"), ["ehs-prod-namespace"]);
        assert_eq!(
            depends_on("bridge"),
            ["ehs-prod-kafka", "ehs-prod-hivemq", "ehs-prod-timescaledb"]
        );
    }

    fn names(value: &Value) -> Vec<String> {
        value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|item| item["name"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn flux_installs_the_operators_from_their_pins_in_the_order_of_argo_cds_waves() {
        let (platform, objects) = built("dev");
        let pins = &platform.upstream.prerequisites;
        let spec = |kind: &str, name: &str| find(&objects, kind, name).value["spec"].clone();

        let cert_manager = spec("HelmRelease", "cert-manager");
        assert_eq!(cert_manager["chart"]["spec"]["chart"], "cert-manager");
        assert_eq!(cert_manager["chart"]["spec"]["version"], pins["certManager"].version);
        assert_eq!(
            cert_manager["chart"]["spec"]["sourceRef"],
            json!({"kind": "HelmRepository", "name": "cert-manager"})
        );
        assert_eq!(spec("HelmRepository", "cert-manager")["url"], pins["certManager"].source);
        assert_eq!(cert_manager["targetNamespace"], "cert-manager");
        assert_eq!(cert_manager["install"]["crds"], "CreateReplace");

        // An oci:// chart is its own source, at the pinned tag; its CRDs come from elsewhere.
        let envoy = spec("HelmRelease", "envoy-gateway");
        assert_eq!(
            envoy["chartRef"],
            json!({"kind": "OCIRepository", "name": "envoy-gateway"})
        );
        let oci = spec("OCIRepository", "envoy-gateway");
        assert_eq!(oci["url"], "oci://docker.io/envoyproxy/gateway-helm");
        assert_eq!(oci["ref"]["tag"], pins["envoyGateway"].version);
        assert_eq!(envoy["install"]["crds"], "Skip");
        assert_eq!(envoy["upgrade"]["crds"], "Skip");

        // Git tags: only the pinned release manifest of CloudNativePG is in the artifact.
        let cnpg = spec("GitRepository", "cloudnative-pg");
        assert_eq!(cnpg["ref"], json!({"tag": pins["cloudNativePg"].version}));
        let include = pins["cloudNativePg"].git_include().unwrap();
        assert_eq!(
            cnpg["ignore"],
            format!("/*\n!/releases/\n/releases/*\n!/releases/{include}\n")
        );
        assert_eq!(spec("Kustomization", "cloudnative-pg")["path"], "./releases");
        assert_eq!(spec("Kustomization", "gateway-api")["wait"], true);

        // Each kind's dependsOn follows the Applications' waves: every install of an earlier
        // wave and of the same kind, nothing else.
        let wave = |name: &str| {
            wave_of(find(&objects, "Application", name))
                .unwrap()
                .parse::<usize>()
                .unwrap()
        };
        let installs: Vec<&Manifest> = objects
            .iter()
            .filter(|object| {
                object.kind() == "HelmRelease"
                    || (object.kind() == "Kustomization"
                        && !object.name().starts_with(platform.environment.namespace.as_ref()))
            })
            .collect();
        assert_eq!(installs.len(), 6);
        for install in &installs {
            let mut expected: Vec<String> = installs
                .iter()
                .filter(|other| {
                    other.kind() == install.kind() && wave(other.name()) < wave(install.name())
                })
                .map(|other| other.name().to_owned())
                .collect();
            expected.sort();
            let mut actual = names(&install.value["spec"]["dependsOn"]);
            actual.sort();
            assert_eq!(actual, expected, "{}/{}", install.kind(), install.name());
        }
        assert_eq!(names(&envoy["dependsOn"]), ["envoy-gateway-crds"]);
        assert_eq!(
            names(&spec("Kustomization", "cloudnative-pg")["dependsOn"]),
            ["gateway-api"]
        );

        // The root is ready once every operator is; the environment's first stage waits for it.
        let root = root_name(&platform);
        let checks: Vec<(String, String)> = spec("Kustomization", &root)["healthChecks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|check| {
                assert_eq!(check["namespace"], "flux-system");
                (
                    check["kind"].as_str().unwrap().to_owned(),
                    check["name"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let expected: Vec<(String, String)> = installs
            .iter()
            .map(|install| (install.kind().to_owned(), install.name().to_owned()))
            .collect();
        assert_eq!(checks, expected);
        assert_eq!(
            names(&spec("Kustomization", "ehs-dev-namespace")["dependsOn"]),
            [root.as_str()]
        );

        // Operators installed by another environment: none rendered, nothing to wait for.
        let mut platform = platform.clone();
        platform.gitops.install_operators = false;
        let objects = build(&platform, &templates()).unwrap();
        assert!(!objects.iter().any(|object| object.kind() == "HelmRelease"));
        let namespace = find(&objects, "Kustomization", "ehs-dev-namespace");
        assert!(names(&namespace.value["spec"]["dependsOn"]).is_empty());
        assert!(find(&objects, "Kustomization", &root).value["spec"]["healthChecks"].is_null());
    }

    /// Argo CD and Flux install each chart at the same version with the same release name and
    /// the same values, in every committed environment.
    #[test]
    fn both_tools_install_each_chart_with_the_same_values() {
        let mut compared = 0;
        for environment in ["dev", "prod"] {
            let (_, objects) = built(environment);
            for application in objects.iter().filter(|object| {
                object.kind() == "Application" && object.value["spec"]["source"]["chart"].is_string()
            }) {
                let source = &application.value["spec"]["source"];
                let release = &find(&objects, "HelmRelease", application.name()).value["spec"];
                assert_eq!(
                    release.get("values"),
                    source["helm"].get("valuesObject"),
                    "{environment}: {}",
                    application.name()
                );
                assert_eq!(release["releaseName"], source["helm"]["releaseName"]);
                assert_eq!(
                    release["targetNamespace"],
                    application.value["spec"]["destination"]["namespace"]
                );
                let version = match release["chartRef"]["name"].as_str() {
                    Some(oci) => &find(&objects, "OCIRepository", oci).value["spec"]["ref"]["tag"],
                    None => &release["chart"]["spec"]["version"],
                };
                assert_eq!(version, &source["targetRevision"]);
                assert_eq!(
                    release["install"]["crds"] == "Skip",
                    source["helm"]["skipCrds"] == true
                );
                compared += usize::from(release.get("values").is_some());
            }
        }
        // cert-manager and Envoy Gateway's CRDs carry values in both environments.
        assert_eq!(compared, 4);
    }

    #[test]
    fn only_leaves_a_folder_and_its_matching_files() {
        assert_eq!(only("rendered/dev", None), ["/*", "!/rendered/", "/rendered/*", "!/rendered/dev/"]);
        assert_eq!(only("releases", Some("cnpg-1.yaml")), ["/*", "!/releases/", "/releases/*", "!/releases/cnpg-1.yaml"]);
        assert!(only(".", None).is_empty());
        assert_eq!(only(".", Some("all.yaml")), ["/*", "!/all.yaml"]);
    }

    #[test]
    fn the_committed_environments_validate_with_their_gitops_objects() {
        for environment in ["dev", "prod"] {
            let (platform, objects) = built(environment);
            assert!(objects.iter().any(|object| object.component == NAME));
            let findings = validate(&objects, &platform);
            assert!(findings.iter().all(|finding| !finding.is_error()), "{findings:#?}");
        }
    }

    #[test]
    fn an_operator_installed_outside_the_namespace_its_policies_admit_is_a_finding() {
        let (mut platform, objects) = built("prod");
        let finding = |platform: &Platform| {
            validate(&objects, platform)
                .into_iter()
                .filter(|finding| finding.field == "gitops.installOperators")
                .map(|finding| finding.reason)
                .collect::<Vec<_>>()
        };
        assert!(finding(&platform).is_empty());
        platform.security.network.cloud_native_pg_namespace = "postgres-operator".into();
        assert_eq!(
            finding(&platform),
            ["Argo CD installs cloudnative-pg in `cnpg-system`, but the network policies admit \
              it from `postgres-operator` (security.network): set that to `cnpg-system`"]
        );
        platform.gitops.install_operators = false;
        assert!(finding(&platform).is_empty());
    }

    #[test]
    fn a_repository_url_a_controller_cannot_clone_is_a_finding() {
        let (mut platform, objects) = built("dev");
        platform.gitops.repository_url = "git@github.com:x/y.git".to_owned();
        let findings = validate(&objects, &platform);
        assert!(
            findings
                .iter()
                .any(|finding| finding.field == "gitops.repositoryUrl"),
            "{findings:#?}"
        );
    }
}
