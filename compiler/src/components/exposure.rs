//! The environment's edge for people: a Gateway API `Gateway` (or, as an option, an Ingress) in
//! front of the HTTP endpoints meant for humans — today only HiveMQ's Control Center.
//!
//! Devices do not come through here: MQTT over TLS has its own LoadBalancer Service in the HiveMQ
//! model. Kafka Connect's REST API and the metrics ports are cluster-internal, and an invariant
//! keeps every route's backend away from them.

use std::collections::BTreeSet;

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use k8s_openapi::NamespaceResourceScope;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{bridge, connect, hivemq, manifest, App, ComponentError, ComponentHooks};
use crate::manifest::Manifest;
use crate::model::{DnsLabel, DnsSubdomain};
use crate::resolve::Platform;
use crate::templates::Templates;
use crate::validate::{FieldPath, KindSchema, Report};

pub const NAME: &str = "exposure";

/// Overridable settings of the environment's HTTP edge.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "ExposureSettings")]
pub struct Layer {
    /// What carries HTTP traffic in: a Gateway API `Gateway` (recommended) or an Ingress for
    /// clusters that still run an Ingress controller.
    pub mode: Option<Mode>,
    /// GatewayClass of the cluster's Gateway API implementation (mode `gateway`), e.g. `eg`
    /// (Envoy Gateway), `cilium`, `istio`.
    pub gateway_class_name: Option<DnsSubdomain>,
    /// IngressClass of the cluster's Ingress controller (mode `ingress`).
    pub ingress_class_name: Option<DnsSubdomain>,
    /// Secret with the HTTPS certificate of every host below (`tls.crt`, `tls.key`). The one
    /// place this name is defined: the Gateway's HTTPS listener (or the Ingress) serves it and the
    /// `certificates` component's Certificate writes it.
    pub tls_secret_name: Option<DnsSubdomain>,
    /// Host label of HiveMQ's Control Center: it is served at `<label>.<domain>`.
    pub control_center_host: Option<DnsLabel>,
}

/// What carries HTTP traffic into the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A Gateway API `Gateway` with HTTP and HTTPS listeners and `HTTPRoute`s.
    Gateway,
    /// A `networking.k8s.io/v1` Ingress per endpoint.
    Ingress,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub mode: Mode,
    pub gateway_class_name: DnsSubdomain,
    pub ingress_class_name: DnsSubdomain,
    pub tls_secret_name: DnsSubdomain,
    pub control_center_host: DnsLabel,
}

/// The environment's Gateway. Namespaced, so every environment has its own.
pub const GATEWAY: &str = "ehs-gateway";
/// Listener names; the ACME HTTP-01 solver attaches to the plain one.
pub const HTTP_LISTENER: &str = "http";
pub const HTTPS_LISTENER: &str = "https";
const HTTP_PORT: u16 = 80;
const HTTPS_PORT: u16 = 443;
const CONTROL_CENTER_ROUTE: &str = "hivemq-control-center";
const GATEWAY_API_GROUP: &str = "gateway.networking.k8s.io";

impl Settings {
    /// Host of HiveMQ's Control Center.
    pub fn control_center_host(&self, domain: &DnsSubdomain) -> String {
        format!("{}.{domain}", self.control_center_host)
    }

    /// Every host served over HTTPS; the HTTPS certificate covers exactly these.
    pub fn https_hosts(&self, domain: &DnsSubdomain) -> Vec<String> {
        vec![self.control_center_host(domain)]
    }
}

/// A route's or an ACME solver's attachment to a listener of the environment's Gateway.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ParentReference {
    pub group: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub section_name: String,
}

/// The environment Gateway's listener `listener`.
pub fn gateway_listener(platform: &Platform, listener: &str) -> ParentReference {
    ParentReference {
        group: GATEWAY_API_GROUP.to_owned(),
        kind: "Gateway".to_owned(),
        name: GATEWAY.to_owned(),
        namespace: platform.environment.namespace.to_string(),
        section_name: listener.to_owned(),
    }
}

custom_resource! {
    /// A Gateway API `Gateway` (standard channel).
    Gateway(GatewaySpec): "gateway.networking.k8s.io" / "v1", "gateways", NamespaceResourceScope
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewaySpec {
    pub gateway_class_name: String,
    pub listeners: Vec<Listener>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Listener {
    pub name: String,
    pub port: u16,
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ListenerTls>,
    pub allowed_routes: AllowedRoutes,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListenerTls {
    pub mode: String,
    pub certificate_refs: Vec<SecretReference>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretReference {
    pub group: String,
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AllowedRoutes {
    pub namespaces: RouteNamespaces,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RouteNamespaces {
    pub from: String,
}

custom_resource! {
    /// A Gateway API `HTTPRoute` (standard channel).
    HTTPRoute(HttpRouteSpec): "gateway.networking.k8s.io" / "v1", "httproutes", NamespaceResourceScope
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpRouteSpec {
    pub parent_refs: Vec<ParentReference>,
    pub hostnames: Vec<String>,
    pub rules: Vec<HttpRouteRule>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpRouteRule {
    pub backend_refs: Vec<BackendReference>,
}

/// A Service and port a route sends traffic to.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackendReference {
    pub name: String,
    pub port: u16,
}

pub fn build(platform: &Platform, _: &Templates) -> Result<Vec<Manifest>, ComponentError> {
    let app = App {
        platform,
        name: GATEWAY,
        component: NAME,
    };
    let exposure = &platform.exposure;
    let host = exposure.control_center_host(&platform.environment.domain);
    let (service, port) = hivemq::control_center_backend();
    match exposure.mode {
        Mode::Gateway => Ok(vec![
            manifest(NAME, &gateway(&app))?,
            manifest(
                NAME,
                &HTTPRoute::new(
                    app.metadata(CONTROL_CENTER_ROUTE),
                    HttpRouteSpec {
                        // HTTPS only: the Control Center's login never crosses the wire in clear.
                        parent_refs: vec![gateway_listener(platform, HTTPS_LISTENER)],
                        hostnames: vec![host],
                        rules: vec![HttpRouteRule {
                            backend_refs: vec![BackendReference {
                                name: service.to_owned(),
                                port,
                            }],
                        }],
                    },
                ),
            )?,
        ]),
        Mode::Ingress => Ok(vec![manifest(
            NAME,
            &Ingress {
                metadata: app.metadata(CONTROL_CENTER_ROUTE),
                spec: Some(IngressSpec {
                    ingress_class_name: Some(exposure.ingress_class_name.to_string()),
                    tls: Some(vec![IngressTLS {
                        hosts: Some(vec![host.clone()]),
                        secret_name: Some(exposure.tls_secret_name.to_string()),
                    }]),
                    rules: Some(vec![IngressRule {
                        host: Some(host),
                        http: Some(HTTPIngressRuleValue {
                            paths: vec![HTTPIngressPath {
                                path: Some("/".to_owned()),
                                path_type: "Prefix".to_owned(),
                                backend: IngressBackend {
                                    service: Some(IngressServiceBackend {
                                        name: service.to_owned(),
                                        port: Some(ServiceBackendPort {
                                            number: Some(i32::from(port)),
                                            name: None,
                                        }),
                                    }),
                                    resource: None,
                                },
                            }],
                        }),
                    }]),
                    default_backend: None,
                }),
                ..Default::default()
            },
        )?]),
    }
}

/// HTTP on 80 (the ACME HTTP-01 solver's routes) and HTTPS on 443 with the environment's
/// certificate. Both accept routes from the environment's namespace only, so no other tenant of
/// the cluster can publish a host through this Gateway.
fn gateway(app: &App) -> Gateway {
    let same_namespace = || AllowedRoutes {
        namespaces: RouteNamespaces {
            from: "Same".to_owned(),
        },
    };
    let exposure = &app.platform.exposure;
    Gateway::new(
        app.metadata(GATEWAY),
        GatewaySpec {
            gateway_class_name: exposure.gateway_class_name.to_string(),
            listeners: vec![
                Listener {
                    name: HTTP_LISTENER.to_owned(),
                    port: HTTP_PORT,
                    protocol: "HTTP".to_owned(),
                    tls: None,
                    allowed_routes: same_namespace(),
                },
                Listener {
                    name: HTTPS_LISTENER.to_owned(),
                    port: HTTPS_PORT,
                    protocol: "HTTPS".to_owned(),
                    tls: Some(ListenerTls {
                        mode: "Terminate".to_owned(),
                        certificate_refs: vec![SecretReference {
                            group: String::new(),
                            kind: "Secret".to_owned(),
                            name: exposure.tls_secret_name.to_string(),
                        }],
                    }),
                    allowed_routes: same_namespace(),
                },
            ],
        },
    )
}

pub struct Hooks;

impl ComponentHooks for Hooks {
    fn kinds() -> Vec<KindSchema> {
        vec![
            KindSchema::of::<Gateway>(),
            KindSchema::of::<HTTPRoute>(),
            KindSchema::of::<Ingress>(),
        ]
    }

    fn invariants(_: &Platform, objects: &[Manifest], report: &mut Report) {
        for (object, field, reason) in internal_backends(objects) {
            report.object(object, field, reason);
        }
    }
}

/// Services that must stay inside the cluster: Kafka Connect's REST API (it can create
/// connectors that read any topic and write anywhere) and the metrics endpoints.
fn internal_services() -> BTreeSet<&'static str> {
    BTreeSet::from([
        connect::APP,
        bridge::APP_NAME,
        hivemq::METRICS_SERVICE,
    ])
}

/// Every HTTPRoute or Ingress backend that is one of the [`internal_services`], or a metrics
/// port of any Service: `(object, field, reason)`.
fn internal_backends(objects: &[Manifest]) -> Vec<(&Manifest, FieldPath, String)> {
    let internal = internal_services();
    let metrics_ports = [hivemq::METRICS_PORT, ehs_contract::http::PORT];
    let mut found = Vec::new();
    let mut check = |object, field: FieldPath, service: &str, port: Option<u64>| {
        if internal.contains(service) {
            found.push((object, field, format!("Service `{service}` is cluster-internal (Kafka Connect's REST API or a metrics endpoint) and must never be exposed; route only endpoints meant for people")));
        } else if port.is_some_and(|port| metrics_ports.iter().any(|&metrics| u64::from(metrics) == port)) {
            found.push((object, field, format!("port {} of Service `{service}` serves metrics, which must never be exposed", port.unwrap_or_default())));
        }
    };
    for object in objects {
        match object.kind() {
            "HTTPRoute" => {
                for (rule_index, rule) in items(&object.value, "/spec/rules") {
                    for (index, backend) in items(rule, "/backendRefs") {
                        let field = FieldPath::of("spec.rules")
                            .index(rule_index)
                            .key("backendRefs")
                            .index(index)
                            .key("name");
                        check(object, field, text(backend, "/name"), backend.pointer("/port").and_then(Value::as_u64));
                    }
                }
            }
            "Ingress" => {
                for (rule_index, rule) in items(&object.value, "/spec/rules") {
                    for (index, path) in items(rule, "/http/paths") {
                        let field = FieldPath::of("spec.rules")
                            .index(rule_index)
                            .key("http")
                            .key("paths")
                            .index(index)
                            .key("backend")
                            .key("service")
                            .key("name");
                        let service = &path["backend"]["service"];
                        check(object, field, text(service, "/name"), service.pointer("/port/number").and_then(Value::as_u64));
                    }
                }
            }
            _ => {}
        }
    }
    found
}

/// The elements of the array at `pointer`, with their indices (none when absent).
pub(crate) fn items<'a>(value: &'a Value, pointer: &str) -> impl Iterator<Item = (usize, &'a Value)> {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

/// The string at `pointer`, or `""`.
pub(crate) fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}
