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
use crate::validate::{items, text, FieldPath, KindSchema, Report};

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
    /// The edge's proxies to the HTTP backends its routes name.
    fn flows(platform: &Platform) -> Vec<crate::graph::Flow> {
        let (service, port) = hivemq::control_center_backend();
        vec![crate::graph::Flow::new(
            super::security::edge(platform),
            hivemq::pods(platform),
            vec![crate::graph::tcp(port)],
            "serves HiveMQ Control Center",
        )
        .via(service)]
    }

    fn stage() -> super::Stage {
        super::Stage::Foundation
    }

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
                for (rule_index, rule) in items(object.value.pointer("/spec/rules")) {
                    for (index, backend) in items(rule.get("backendRefs")) {
                        let field = FieldPath::of("spec.rules")
                            .index(rule_index)
                            .key("backendRefs")
                            .index(index)
                            .key("name");
                        check(object, field, text(backend, "name"), backend.pointer("/port").and_then(Value::as_u64));
                    }
                }
            }
            "Ingress" => {
                for (rule_index, rule) in items(object.value.pointer("/spec/rules")) {
                    for (index, path) in items(rule.pointer("/http/paths")) {
                        let field = FieldPath::of("spec.rules")
                            .index(rule_index)
                            .key("http")
                            .key("paths")
                            .index(index)
                            .key("backend")
                            .key("service")
                            .key("name");
                        let service = &path["backend"]["service"];
                        check(object, field, text(service, "name"), service.pointer("/port/number").and_then(Value::as_u64));
                    }
                }
            }
            _ => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::resolve::tests::{platform, templates};
    use crate::validate::testing::{set, triples};
    use crate::validate::validate;

    fn objects_of(platform: &Platform) -> Vec<Manifest> {
        crate::components::build_all(platform, &templates()).unwrap()
    }

    fn of_kind<'a>(objects: &'a [Manifest], kind: &str) -> Vec<&'a Manifest> {
        objects.iter().filter(|object| object.kind() == kind).collect()
    }

    #[test]
    fn the_gateway_serves_the_control_center_over_https_only() {
        let mut platform = platform("prod");
        platform.exposure.gateway_class_name = "cilium".into();
        let objects = objects_of(&platform);
        let gateway = &of_kind(&objects, "Gateway")[0].value;
        assert_eq!(gateway["spec"]["gatewayClassName"], "cilium");
        let listeners = &gateway["spec"]["listeners"];
        assert_eq!(
            [&listeners[0]["port"], &listeners[1]["port"]],
            [&json!(80), &json!(443)]
        );
        assert_eq!(
            listeners[1]["tls"]["certificateRefs"][0]["name"],
            "ehs-gateway-tls"
        );
        for listener in listeners.as_array().unwrap() {
            assert_eq!(listener["allowedRoutes"]["namespaces"]["from"], "Same");
        }
        let routes = of_kind(&objects, "HTTPRoute");
        assert_eq!(routes.len(), 1);
        let route = &routes[0].value["spec"];
        assert_eq!(route["hostnames"], json!(["hivemq.energy.example.com"]));
        assert_eq!(route["parentRefs"][0]["sectionName"], HTTPS_LISTENER);
        assert_eq!(
            route["rules"][0]["backendRefs"],
            json!([{"name": "hivemq-control-center", "port": 8080}])
        );
        assert!(of_kind(&objects, "Ingress").is_empty());
    }

    #[test]
    fn ingress_mode_renders_an_ingress_instead_and_stays_valid() {
        let mut platform = platform("dev");
        platform.exposure.mode = Mode::Ingress;
        platform.exposure.ingress_class_name = "traefik".into();
        let objects = objects_of(&platform);
        assert!(of_kind(&objects, "Gateway").is_empty());
        assert!(of_kind(&objects, "HTTPRoute").is_empty());
        let ingress = &of_kind(&objects, "Ingress")[0].value["spec"];
        assert_eq!(ingress["ingressClassName"], "traefik");
        assert_eq!(
            ingress["tls"],
            json!([{"hosts": ["hivemq.dev.energy.example.com"], "secretName": "ehs-gateway-tls"}])
        );
        assert_eq!(
            ingress["rules"][0]["http"]["paths"][0]["backend"]["service"],
            json!({"name": "hivemq-control-center", "port": {"number": 8080}})
        );
        assert_eq!(triples(validate(&objects, &platform)), Vec::new());
    }

    #[test]
    fn connect_rest_and_metrics_are_never_routed() {
        let platform = platform("prod");
        let mut objects = objects_of(&platform);
        let backend = "/spec/rules/0/backendRefs/0";
        set(
            &mut objects,
            "HTTPRoute",
            CONTROL_CENTER_ROUTE,
            &format!("{backend}/name"),
            json!("kafka-connect"),
        );
        set(
            &mut objects,
            "HTTPRoute",
            CONTROL_CENTER_ROUTE,
            "/spec/rules/1",
            json!({"backendRefs": [{"name": "some-app", "port": 9399}]}),
        );
        let found = internal_backends(&objects);
        let places: Vec<(String, String)> = found
            .iter()
            .map(|(object, field, _)| (object.name().to_owned(), field.to_string()))
            .collect();
        assert_eq!(
            places,
            [
                (
                    CONTROL_CENTER_ROUTE.to_owned(),
                    "spec.rules[0].backendRefs[0].name".to_owned()
                ),
                (
                    CONTROL_CENTER_ROUTE.to_owned(),
                    "spec.rules[1].backendRefs[0].name".to_owned()
                ),
            ]
        );
        assert!(found[0].2.contains("`kafka-connect`"), "{}", found[0].2);
        assert!(found[1].2.contains("port 9399"), "{}", found[1].2);

        let mut platform = platform;
        platform.exposure.mode = Mode::Ingress;
        let mut objects = objects_of(&platform);
        set(
            &mut objects,
            "Ingress",
            CONTROL_CENTER_ROUTE,
            "/spec/rules/0/http/paths/0/backend/service/name",
            json!("ehs-bridge"),
        );
        let found = internal_backends(&objects);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].1.to_string(),
            "spec.rules[0].http.paths[0].backend.service.name"
        );
    }
}
