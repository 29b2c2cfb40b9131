//! Security by construction: NetworkPolicies from the connection graph, and the acknowledgements
//! a production environment must give explicitly.
//!
//! Every namespace the environment renders gets a default-deny of ingress and egress, DNS egress,
//! and one NetworkPolicy per end of every flow in the graph ([`crate::graph`]): an egress policy
//! on the client's pods when they are ours, an ingress policy on the server's pods when they are
//! ours. Flows come from each component's `flows` hook, built from the Service names and ports its
//! configuration points at, so a component that declares no flows gets no traffic at all.
//!
//! What the model cannot know about the cluster (where DNS, the API server, the operators and
//! the HTTP edge's proxies run) is in this component's settings.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{manifest, App, ComponentError, ComponentHooks, ALL};
use crate::graph::{self, Flow, Labels, Peer, Port, Protocol};
use crate::manifest::Manifest;
use crate::model::DnsLabel;
use crate::resolve::Platform;
use crate::templates::Templates;
use crate::validate::{FieldPath, KindSchema, Reference, Report, Severity};

pub const NAME: &str = "security";

/// Overridable security settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "SecuritySettings")]
pub struct Layer {
    /// Where the cluster services the platform's pods talk to run.
    pub network: Option<NetworkLayer>,
    /// Why this production environment runs images pinned by tag only (no `@sha256:` digest).
    /// Unset: every such image is a warning in a production environment.
    pub tag_only_images_reason: Option<String>,
    /// checkov checks that do not apply to an object, each with the reason; rendered as
    /// checkov's `checkov.io/skip<n>` annotation on that object.
    pub checkov_skips: Option<Vec<CheckovSkip>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkLayer {
    /// The cluster DNS every pod resolves names with.
    pub dns: Option<DnsLayer>,
    /// Addresses and ports of the Kubernetes API server, for the pods that call it. Policies see
    /// the endpoint behind the `kubernetes` Service (usually port 6443 on the control plane), not
    /// its ClusterIP: narrow `cidrs` to the control plane's addresses where they are known.
    pub kubernetes_api: Option<KubernetesApiLayer>,
    /// Namespace of the CloudNativePG operator (its manifest's `cnpg-system`).
    pub cloud_native_pg_namespace: Option<DnsLabel>,
    /// Namespace of the HiveMQ Platform Operator (the Helm release's namespace).
    pub hivemq_operator_namespace: Option<DnsLabel>,
    /// Namespace where the HTTP edge's proxies run: Envoy Gateway's `envoy-gateway-system` for a
    /// Gateway, the Ingress controller's namespace in ingress mode.
    pub edge_namespace: Option<DnsLabel>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DnsLayer {
    pub namespace: Option<DnsLabel>,
    /// Labels of the DNS server's pods, e.g. `k8s-app: kube-dns` (CoreDNS keeps that label).
    pub pod_labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubernetesApiLayer {
    pub cidrs: Option<Vec<String>>,
    pub ports: Option<Vec<u16>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CheckovSkip {
    /// checkov's check id, e.g. `CKV_K8S_43`.
    pub check: String,
    /// Kind of the rendered object it does not apply to.
    pub kind: String,
    /// Name of that object, or of its application (`app.kubernetes.io/name`): Jobs carry a
    /// hash of what they run in their name, e.g. `kafka-topics` for `kafka-topics-adda3881`.
    pub name: String,
    /// Why it does not apply; shown in checkov's report.
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub network: Network,
    pub tag_only_images_reason: Option<String>,
    pub checkov_skips: Vec<CheckovSkip>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    pub dns: Dns,
    pub kubernetes_api: KubernetesApi,
    pub cloud_native_pg_namespace: DnsLabel,
    pub hivemq_operator_namespace: DnsLabel,
    pub edge_namespace: DnsLabel,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dns {
    pub namespace: DnsLabel,
    pub pod_labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesApi {
    pub cidrs: Vec<String>,
    pub ports: Vec<u16>,
}

const DNS_PORT: u16 = 53;
const DEFAULT_DENY: &str = "default-deny";
/// `app.kubernetes.io/name` of every NetworkPolicy.
const POLICY_APP: &str = "network-policy";
/// The label Kubernetes puts on every namespace with its name.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// Why a flow's policy exists, for whoever reads it in the cluster.
const PURPOSE_ANNOTATION: &str = "ehs-platform.io/purpose";
/// On a policy selecting pods an operator creates (no rendered template carries their labels).
pub const PODS_CREATED_BY_ANNOTATION: &str = "ehs-platform.io/pods-created-by";

/// The Kubernetes API server, for flows of pods that call it.
pub fn kubernetes_api(platform: &Platform) -> (Peer, Vec<Port>) {
    let api = &platform.security.network.kubernetes_api;
    (
        Peer::Addresses {
            name: "kubernetes-api".to_owned(),
            cidrs: api.cidrs.clone(),
        },
        api.ports.iter().copied().map(graph::tcp).collect(),
    )
}

/// The HTTP edge's proxies (Gateway or Ingress controller), for flows to HTTP backends.
pub fn edge(platform: &Platform) -> Peer {
    Peer::in_namespace(
        "http-edge",
        platform.security.network.edge_namespace.as_ref(),
        Labels::new(),
    )
}

/// Every namespace the environment renders: its own and those components add.
fn owned_namespaces(platform: &Platform) -> Vec<String> {
    let mut namespaces = vec![platform.environment.namespace.to_string()];
    for component in ALL {
        namespaces.extend((component.namespaces)(platform));
    }
    namespaces
}

fn selector(labels: &Labels) -> LabelSelector {
    LabelSelector {
        match_labels: (!labels.is_empty()).then(|| labels.clone()),
        ..Default::default()
    }
}

/// `peer` as seen from a policy in `policy_namespace`.
fn policy_peers(peer: &Peer, policy_namespace: &str, environment: &str) -> Vec<NetworkPolicyPeer> {
    match peer {
        Peer::Pods { labels, .. } => {
            let namespace = peer.namespace(environment).unwrap_or(environment);
            vec![NetworkPolicyPeer {
                pod_selector: Some(selector(labels)),
                namespace_selector: (namespace != policy_namespace).then(|| {
                    selector(&Labels::from([(
                        NAMESPACE_NAME_LABEL.to_owned(),
                        namespace.to_owned(),
                    )]))
                }),
                ip_block: None,
            }]
        }
        Peer::Addresses { cidrs, .. } => cidrs
            .iter()
            .map(|cidr| NetworkPolicyPeer {
                ip_block: Some(IPBlock {
                    cidr: cidr.clone(),
                    except: None,
                }),
                ..Default::default()
            })
            .collect(),
    }
}

fn policy_ports(ports: &[Port]) -> Vec<NetworkPolicyPort> {
    ports
        .iter()
        .map(|port| NetworkPolicyPort {
            port: Some(IntOrString::Int(i32::from(port.number))),
            protocol: Some(port.protocol.k8s().to_owned()),
            end_port: None,
        })
        .collect()
}

/// The NetworkPolicies of one flow: egress where the client's pods are ours, ingress where the
/// server's are.
pub fn flow_policies(app: &App, owned: &[String], flow: &Flow) -> Vec<NetworkPolicy> {
    let environment = app.platform.environment.namespace.as_ref();
    let ours = |peer: &Peer| {
        peer.namespace(environment)
            .filter(|namespace| owned.iter().any(|owned| owned == namespace))
            .map(str::to_owned)
    };
    let annotations = |peer: &Peer| {
        let mut annotations = BTreeMap::from([(PURPOSE_ANNOTATION.to_owned(), flow.purpose.clone())]);
        if let Peer::Pods {
            created_by: Some(operator),
            ..
        } = peer
        {
            annotations.insert(PODS_CREATED_BY_ANNOTATION.to_owned(), operator.clone());
        }
        annotations
    };
    let metadata = |name: String, namespace: String, selected: &Peer| ObjectMeta {
        annotations: Some(annotations(selected)),
        ..policy_metadata(app, &name, namespace)
    };
    let pods = |peer: &Peer| match peer {
        Peer::Pods { labels, .. } => selector(labels),
        Peer::Addresses { .. } => LabelSelector::default(),
    };
    let mut policies = Vec::new();
    if let Some(namespace) = ours(&flow.from) {
        let name = format!("{}-to-{}", flow.from.name(), flow.to.name());
        policies.push(NetworkPolicy {
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(pods(&flow.from)),
                policy_types: Some(vec!["Egress".to_owned()]),
                egress: Some(vec![NetworkPolicyEgressRule {
                    to: Some(policy_peers(&flow.to, &namespace, environment)),
                    ports: Some(policy_ports(&flow.ports)),
                }]),
                ingress: None,
            }),
            metadata: metadata(name, namespace, &flow.from),
        });
    }
    if let Some(namespace) = ours(&flow.to) {
        let name = format!("{}-from-{}", flow.to.name(), flow.from.name());
        policies.push(NetworkPolicy {
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(pods(&flow.to)),
                policy_types: Some(vec!["Ingress".to_owned()]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    from: Some(policy_peers(&flow.from, &namespace, environment)),
                    ports: Some(policy_ports(&flow.ports)),
                }]),
                egress: None,
            }),
            metadata: metadata(name, namespace, &flow.to),
        });
    }
    policies
}

/// Policies of other namespaces carry theirs in the name: `rendered/<env>/security/` holds all
/// of them, one file per kind and name.
fn policy_metadata(app: &App, name: &str, namespace: String) -> ObjectMeta {
    let name = if namespace == app.platform.environment.namespace.as_ref() {
        name.to_owned()
    } else {
        format!("{namespace}-{name}")
    };
    ObjectMeta {
        namespace: Some(namespace),
        ..app.metadata(&name)
    }
}

fn policy_app(platform: &Platform) -> App<'_> {
    App {
        platform,
        name: POLICY_APP,
        component: NAME,
    }
}

pub fn build(platform: &Platform, _: &Templates) -> Result<Vec<Manifest>, ComponentError> {
    let app = policy_app(platform);
    let owned = owned_namespaces(platform);
    let mut objects = Vec::new();
    for namespace in &owned {
        let deny = NetworkPolicy {
            metadata: policy_metadata(&app, DEFAULT_DENY, namespace.clone()),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(LabelSelector::default()),
                policy_types: Some(vec!["Ingress".to_owned(), "Egress".to_owned()]),
                ..Default::default()
            }),
        };
        objects.push(manifest(NAME, &deny)?);
    }
    for edge in graph::graph(platform).edges {
        for policy in flow_policies(&app, &owned, &edge.flow) {
            objects.push(manifest(NAME, &policy)?);
        }
    }
    Ok(objects)
}

/// CKV_K8S_43 ("image should use digest"): the environment acknowledges tag-only images.
const DIGEST_CHECK: &str = "CKV_K8S_43";

fn skip_applies(skip: &CheckovSkip, object: &Manifest) -> bool {
    let app = object
        .value
        .pointer("/metadata/labels/app.kubernetes.io~1name")
        .and_then(Value::as_str);
    object.kind() == skip.kind && (object.name() == skip.name || app == Some(skip.name.as_str()))
}

/// Puts each declared checkov skip on its objects as `checkov.io/skip<n>: <check>=<reason>`,
/// numbered per object: the declared ones in order, then CKV_K8S_43 with
/// `tagOnlyImagesReason` on objects running an image without digest when it is given. A skip
/// naming no rendered object is no finding: the defaults name objects an environment may not
/// render (the provisioner with `storage.provisioner: none`), and a misspelt one skips nothing,
/// so checkov still fails.
pub fn annotate_checkov_skips(platform: &Platform, objects: &mut [Manifest]) {
    let security = &platform.security;
    for object in objects.iter_mut() {
        let mut skips: Vec<String> = security
            .checkov_skips
            .iter()
            .filter(|skip| skip_applies(skip, object))
            .map(|skip| format!("{}={}", skip.check, skip.reason))
            .collect();
        if let Some(reason) = &security.tag_only_images_reason {
            let mut found = Vec::new();
            images(&object.value, &FieldPath::root(), &mut found);
            if found.iter().any(|(_, image)| !image.contains("@sha256:")) {
                skips.push(format!("{DIGEST_CHECK}={reason}"));
            }
        }
        if skips.is_empty() {
            continue;
        }
        let metadata = &mut object.value["metadata"];
        if !metadata["annotations"].is_object() {
            metadata["annotations"] = Value::Object(serde_json::Map::new());
        }
        for (index, skip) in skips.into_iter().enumerate() {
            metadata["annotations"][format!("checkov.io/skip{}", index + 1)] = Value::String(skip);
        }
    }
}

/// Every image reference in an object: containers' `image`, CloudNativePG's `imageName` and
/// image volumes' `image.reference`, with the field it is in.
fn images(value: &Value, field: &FieldPath, found: &mut Vec<(FieldPath, String)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let path = field.key(key);
                match (key.as_str(), child) {
                    ("image" | "imageName", Value::String(image)) => {
                        found.push((path, image.clone()));
                    }
                    ("image", Value::Object(volume)) if volume.get("reference").is_some() => {
                        if let Some(Value::String(image)) = volume.get("reference") {
                            found.push((path.key("reference"), image.clone()));
                        }
                    }
                    _ => images(child, &path, found),
                }
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                images(child, &field.index(index), found);
            }
        }
        _ => {}
    }
}

pub struct Hooks;

impl ComponentHooks for Hooks {
    /// With what the stateful components need, before them: their pods start with their
    /// policies in place. The namespaces other components add must exist first (see the Flux
    /// dependencies in `gitops`).
    fn stage() -> super::Stage {
        super::Stage::Foundation
    }

    fn kinds() -> Vec<KindSchema> {
        vec![KindSchema::of::<NetworkPolicy>()]
    }

    /// DNS for every pod of every namespace the environment renders.
    fn flows(platform: &Platform) -> Vec<Flow> {
        let dns = &platform.security.network.dns;
        let server = Peer::in_namespace("dns", dns.namespace.as_ref(), dns.pod_labels.clone());
        owned_namespaces(platform)
            .into_iter()
            .map(|namespace| {
                Flow::new(
                    Peer::in_namespace("all-pods", &namespace, Labels::new()),
                    server.clone(),
                    vec![
                        Port {
                            number: DNS_PORT,
                            protocol: Protocol::Udp,
                        },
                        graph::tcp(DNS_PORT),
                    ],
                    "name resolution",
                )
            })
            .collect()
    }

    fn invariants(platform: &Platform, objects: &[Manifest], report: &mut Report) {
        flows_cover_references(platform, report);
        for (index, skip) in platform.security.checkov_skips.iter().enumerate() {
            if skip.reason.trim().is_empty() {
                report.model(
                    format!("security.checkovSkips[{index}].reason"),
                    "say why the check does not apply",
                );
            }
        }
        if platform.environment.production {
            tag_only_images(platform, objects, report);
        }
    }
}

/// A Service a component's configuration points at must be reachable: the component declares a
/// flow through it, or default-deny cuts the connection.
fn flows_cover_references(platform: &Platform, report: &mut Report) {
    for component in ALL {
        for (field, reason) in uncovered_references(
            component.name,
            &(component.flows)(platform),
            &(component.references)(platform),
        ) {
            report.model(field, reason);
        }
    }
}

/// `(field, reason)` for each Service in `references` no flow of `component` goes through.
fn uncovered_references(
    component: &str,
    flows: &[Flow],
    references: &[Reference],
) -> Vec<(String, String)> {
    let via: BTreeSet<&str> = flows.iter().filter_map(|flow| flow.via.as_deref()).collect();
    references
        .iter()
        .filter(|reference| reference.to.0 == "Service" && !via.contains(reference.to.1.as_str()))
        .map(|reference| {
            (
                format!("{component}.flows"),
                format!(
                    "{} {} references Service `{}` (at {}) but `{component}` declares no flow \
                     via it, so default-deny blocks the connection; add one to its `flows` hook",
                    reference.from.0, reference.from.1, reference.to.1, reference.field
                ),
            )
        })
        .collect()
}

fn tag_only_images(platform: &Platform, objects: &[Manifest], report: &mut Report) {
    if platform.security.tag_only_images_reason.is_some() {
        return;
    }
    for object in objects {
        let mut found = Vec::new();
        images(&object.value, &FieldPath::root(), &mut found);
        for (field, image) in found {
            if !image.contains("@sha256:") {
                report.object_as(
                    Severity::Warning,
                    object,
                    field,
                    format!(
                        "image `{image}` is pinned by tag only in a production environment; \
                         pin its digest in components/upstream.yaml, or give \
                         `security.tagOnlyImagesReason`"
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::resolve::tests::{platform, templates};
    use crate::validate::testing::findings_of;

    fn rendered(platform: &Platform) -> Vec<Manifest> {
        super::super::build_all(platform, &templates()).unwrap()
    }

    fn policy<'a>(objects: &'a [Manifest], name: &str) -> Option<&'a Value> {
        objects
            .iter()
            .find(|object| object.kind() == "NetworkPolicy" && object.name() == name)
            .map(|object| &object.value)
    }

    /// `(port, protocol)` pairs of a policy's one rule.
    fn ports(policy: &Value) -> Vec<(i64, String)> {
        let rule = policy["spec"]["egress"]
            .get(0)
            .or_else(|| policy["spec"]["ingress"].get(0))
            .unwrap();
        rule["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|port| {
                (
                    port["port"].as_i64().unwrap(),
                    port["protocol"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn every_namespace_denies_by_default_and_resolves_names() {
        let prod = platform("prod");
        let objects = rendered(&prod);
        for (deny, dns) in [
            ("default-deny", "all-pods-to-dns"),
            ("ehs-prod-storage-default-deny", "ehs-prod-storage-all-pods-to-dns"),
        ] {
            let deny = policy(&objects, deny).unwrap();
            assert_eq!(deny["spec"]["podSelector"], json!({}));
            assert_eq!(deny["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
            assert!(deny["spec"].get("ingress").is_none() && deny["spec"].get("egress").is_none());
            let dns = policy(&objects, dns).unwrap();
            assert_eq!(
                ports(dns),
                [(53, "UDP".to_owned()), (53, "TCP".to_owned())]
            );
            assert_eq!(
                dns["spec"]["egress"][0]["to"][0]["namespaceSelector"]["matchLabels"],
                json!({"kubernetes.io/metadata.name": "kube-system"})
            );
        }
    }

    #[test]
    fn each_known_flow_has_its_policies_on_the_ports_the_components_use() {
        let prod = platform("prod");
        let objects = rendered(&prod);
        let tcp = |port: u16| vec![(i64::from(port), "TCP".to_owned())];
        let expected = [
            ("ehs-bridge-to-hivemq", tcp(super::super::hivemq::MQTT_PORT)),
            ("hivemq-from-ehs-bridge", tcp(super::super::hivemq::MQTT_PORT)),
            ("ehs-bridge-to-kafka", tcp(super::super::kafka::CLIENT_PORT)),
            ("kafka-from-ehs-bridge", tcp(super::super::kafka::CLIENT_PORT)),
            ("kafka-connect-to-kafka", tcp(super::super::kafka::CLIENT_PORT)),
            ("kafka-connect-to-timescaledb", tcp(prod.timescaledb.connection().port)),
            ("timescaledb-from-kafka-connect", tcp(prod.timescaledb.connection().port)),
            ("timescaledb-to-timescaledb", tcp(prod.timescaledb.connection().port)),
            ("kafka-topics-to-kafka", tcp(super::super::kafka::CLIENT_PORT)),
            ("kafka-connect-register-to-kafka-connect", tcp(super::super::connect::REST_PORT)),
            ("hivemq-from-devices", tcp(8883)),
            ("hivemq-from-http-edge", tcp(super::super::hivemq::control_center_backend().1)),
            ("acme-http01-solver-from-http-edge", tcp(8089)),
        ];
        for (name, ports_expected) in expected {
            let found = policy(&objects, name).unwrap_or_else(|| panic!("no policy {name}"));
            assert_eq!(ports(found), ports_expected, "{name}");
        }
        let kafka = policy(&objects, "kafka-to-kafka").unwrap();
        assert_eq!(
            ports(kafka),
            [(9092, "TCP".to_owned()), (9093, "TCP".to_owned())]
        );
        // Operators and the edge live elsewhere: only our side gets a policy.
        assert!(policy(&objects, "timescaledb-from-cloudnative-pg").is_some());
        assert!(policy(&objects, "cloudnative-pg-to-timescaledb").is_none());
        let api = policy(&objects, "timescaledb-to-kubernetes-api").unwrap();
        assert_eq!(
            api["spec"]["egress"][0]["to"],
            json!([{"ipBlock": {"cidr": "0.0.0.0/0"}}])
        );
    }

    #[test]
    fn every_end_of_every_flow_in_our_namespaces_has_a_policy_selecting_its_pods() {
        for environment in ["dev", "prod"] {
            let platform = platform(environment);
            let objects = rendered(&platform);
            let owned = owned_namespaces(&platform);
            let namespace = platform.environment.namespace.to_string();
            for edge in graph::graph(&platform).edges {
                for (peer, name) in [
                    (&edge.flow.from, format!("{}-to-{}", edge.flow.from.name(), edge.flow.to.name())),
                    (&edge.flow.to, format!("{}-from-{}", edge.flow.to.name(), edge.flow.from.name())),
                ] {
                    let Peer::Pods { labels, .. } = peer else { continue };
                    let Some(in_namespace) = peer.namespace(&namespace) else { continue };
                    if !owned.iter().any(|own| own == in_namespace) {
                        continue;
                    }
                    let name = if in_namespace == namespace {
                        name
                    } else {
                        format!("{in_namespace}-{name}")
                    };
                    let found = policy(&objects, &name).unwrap_or_else(|| panic!("{name}"));
                    let selected = &found["spec"]["podSelector"];
                    assert_eq!(
                        selected.get("matchLabels").cloned().unwrap_or(json!({})),
                        serde_json::to_value(labels).unwrap(),
                        "{name}"
                    );
                }
            }
        }
    }

    #[test]
    fn removing_what_a_flow_comes_from_removes_its_policies() {
        let mut platform = platform("prod");
        assert!(policy(&rendered(&platform), "acme-http01-solver-from-http-edge").is_some());
        platform.certificates.enabled = false;
        assert!(policy(&rendered(&platform), "acme-http01-solver-from-http-edge").is_none());

        platform.storage.provisioner = super::super::storage::Provisioner::None;
        let objects = rendered(&platform);
        assert!(objects
            .iter()
            .all(|object| object.namespace() != Some("ehs-prod-storage")));
        assert!(policy(&objects, "default-deny").is_some());
    }

    #[test]
    fn devices_are_limited_to_their_source_ranges_only_where_the_broker_sees_them() {
        let mut platform = platform("prod");
        platform.hivemq.devices.load_balancer_source_ranges = vec!["203.0.113.0/24".to_owned()];
        let from = |platform: &Platform| {
            policy(&rendered(platform), "hivemq-from-devices").unwrap()["spec"]["ingress"][0]
                ["from"]
                .clone()
        };
        platform.hivemq.devices.external_traffic_policy = super::super::hivemq::TrafficPolicy::Cluster;
        assert_eq!(
            from(&platform),
            json!([{"ipBlock": {"cidr": "0.0.0.0/0"}}, {"ipBlock": {"cidr": "::/0"}}])
        );
        platform.hivemq.devices.external_traffic_policy = super::super::hivemq::TrafficPolicy::Local;
        assert_eq!(from(&platform), json!([{"ipBlock": {"cidr": "203.0.113.0/24"}}]));
    }

    #[test]
    fn a_referenced_service_without_a_flow_is_a_finding() {
        let prod = platform("prod");
        let references = <super::super::bridge::Hooks as ComponentHooks>::references(&prod);
        let flows = <super::super::bridge::Hooks as ComponentHooks>::flows(&prod);
        assert_eq!(uncovered_references("bridge", &flows, &references), Vec::new());
        let without_kafka: Vec<Flow> = flows
            .into_iter()
            .filter(|flow| flow.via.as_deref() != Some(super::super::kafka::CLIENT_SERVICE))
            .collect();
        let uncovered = uncovered_references("bridge", &without_kafka, &references);
        assert_eq!(uncovered.len(), 1, "{uncovered:?}");
        assert_eq!(uncovered[0].0, "bridge.flows");
        assert!(uncovered[0].1.contains("Service `kafka`"), "{}", uncovered[0].1);
    }

    #[test]
    fn tag_only_images_warn_in_production_unless_acknowledged() {
        let mut prod = platform("prod");
        prod.security.tag_only_images_reason = None;
        let objects = rendered(&prod);
        let warnings = findings_of("prod", |report| Hooks::invariants(&prod, &objects, report));
        assert!(warnings.iter().any(|(object, field, reason)| object
            == "kafka/StatefulSet/kafka"
            && field == "spec.template.spec.containers[0].image"
            && reason.contains("pinned by tag only")));
        // TimescaleDB's extension image is pinned by digest (components/upstream.yaml).
        assert!(!warnings.iter().any(|(_, field, _)| field
            == "spec.postgresql.extensions[0].image.reference"));
        prod.security.tag_only_images_reason = Some("no digests yet".to_owned());
        assert_eq!(
            findings_of("prod", |report| Hooks::invariants(&prod, &objects, report)),
            Vec::new()
        );
        let dev = platform("dev");
        let objects = rendered(&dev);
        assert_eq!(
            findings_of("dev", |report| Hooks::invariants(&dev, &objects, report)),
            Vec::new()
        );
    }

    #[test]
    fn checkov_skips_become_numbered_annotations_on_their_object() {
        let mut dev = platform("dev");
        let skip = |check: &str, name: &str| CheckovSkip {
            check: check.to_owned(),
            kind: "StatefulSet".to_owned(),
            name: name.to_owned(),
            reason: "because".to_owned(),
        };
        dev.security.checkov_skips = vec![skip("CKV_K8S_1", "kafka"), skip("CKV_K8S_2", "kafka")];
        let objects = rendered(&dev);
        let kafka = objects
            .iter()
            .find(|object| object.kind() == "StatefulSet" && object.name() == "kafka")
            .unwrap();
        let annotations = &kafka.value["metadata"]["annotations"];
        assert_eq!(annotations["checkov.io/skip1"], "CKV_K8S_1=because");
        assert_eq!(annotations["checkov.io/skip2"], "CKV_K8S_2=because");

        // Only the digest check, with the acknowledged reason: the skips name the StatefulSet.
        let topics = objects
            .iter()
            .find(|object| object.kind() == "Job" && object.name().starts_with("kafka-topics-"))
            .unwrap();
        assert_eq!(
            topics.value["metadata"]["annotations"]["checkov.io/skip1"],
            "CKV_K8S_43=development follows image tags"
        );

        dev.security.checkov_skips = vec![CheckovSkip {
            reason: " ".to_owned(),
            ..skip("CKV_K8S_1", "kafka")
        }];
        let objects = rendered(&dev);
        let findings = findings_of("dev", |report| Hooks::invariants(&dev, &objects, report));
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].1, "security.checkovSkips[0].reason");
    }

    #[test]
    fn the_graph_prints_as_text_and_as_dot() {
        let graph = graph::graph(&platform("prod"));
        let text = graph.text();
        assert_eq!(text.lines().count(), graph.edges.len() + 1);
        assert!(text.lines().any(|line| line.starts_with("ehs-bridge ")
            && line.contains("-> hivemq ")
            && line.contains("tcp/1883")
            && line.contains("via hivemq-mqtt")));
        let dot = graph.dot();
        assert!(dot.starts_with("digraph \"ehs-prod\" {\n"), "{dot}");
        assert!(dot.ends_with("}\n"));
        assert!(dot.contains("\"ehs-bridge\" -> \"hivemq\" [label=\"tcp/1883\""), "{dot}");
        assert!(dot.contains("\"devices (0.0.0.0/0, ::/0)\" [shape=ellipse];"), "{dot}");
        assert_eq!(dot.matches(" -> ").count(), graph.edges.len());
    }
}
