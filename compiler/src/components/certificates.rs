//! Certificates from Let's Encrypt through cert-manager: one ACME `ClusterIssuer` per
//! environment and a `Certificate` for every TLS endpoint the platform serves — the devices' MQTT
//! listener (a PKCS#12 keystore in the Secret HiveMQ mounts) and the HTTPS hosts of the exposure
//! component.
//!
//! The Secrets' names are not defined here: each Certificate writes the Secret its consumer's
//! model names (`hivemq.tls.secretName`, `exposure.tlsSecretName`).

use std::collections::BTreeSet;

use k8s_openapi::ClusterResourceScope;
use k8s_openapi::NamespaceResourceScope;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::exposure::{self, gateway_listener, ParentReference};
use super::{hivemq, manifest, App, ComponentError, ComponentHooks};
use crate::manifest::Manifest;
use crate::model::DnsSubdomain;
use crate::resolve::Platform;
use crate::templates::Templates;
use crate::validate::{items, text, FieldPath, KindSchema, Report, Severity};

pub const NAME: &str = "certificates";

/// Overridable cert-manager settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "CertificatesSettings")]
pub struct Layer {
    /// Render the ClusterIssuer and Certificates. Off, every TLS Secret must be declared in
    /// `providedExternally`.
    pub enabled: Option<bool>,
    /// The ACME account and how it proves control of the hosts.
    pub acme: Option<AcmeLayer>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "CertificatesAcme")]
pub struct AcmeLayer {
    /// Contact e-mail of the ACME account (expiry and policy notices). Production environments
    /// must set it.
    pub email: Option<String>,
    /// ACME directory URL. Unset: Let's Encrypt's production directory in production
    /// environments, its staging directory (untrusted certificates, generous rate limits)
    /// elsewhere.
    pub server: Option<String>,
    /// How Let's Encrypt checks that the platform controls a host.
    pub solver: Option<Solver>,
    /// DNS-01 through Cloudflare (solver `dns01`).
    pub dns01: Option<Dns01Layer>,
}

/// ACME challenge type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Solver {
    /// HTTP-01 on port 80 of every host, served through the environment's Gateway (or its
    /// Ingress class in ingress mode).
    Http01,
    /// DNS-01: a TXT record written through Cloudflare's API. Works for hosts port 80 cannot
    /// reach, such as the devices' MQTT host on its own load balancer.
    Dns01,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "CertificatesDns01")]
pub struct Dns01Layer {
    /// Secret with a Cloudflare API token (permission Zone:DNS:Edit) in cert-manager's cluster
    /// resource namespace (`cert-manager` by default), since the issuer is cluster-scoped.
    pub cloudflare_api_token_secret: Option<SecretKeyLayer>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "SecretKey")]
pub struct SecretKeyLayer {
    pub name: Option<DnsSubdomain>,
    pub key: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub enabled: bool,
    pub acme: Acme,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Acme {
    pub email: Option<String>,
    pub server: Option<String>,
    pub solver: Solver,
    pub dns01: Dns01,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dns01 {
    pub cloudflare_api_token_secret: SecretKey,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretKey {
    pub name: DnsSubdomain,
    pub key: String,
}

/// The port cert-manager's HTTP-01 solver pods listen on.
const HTTP01_SOLVER_PORT: u16 = 8089;

pub const LETS_ENCRYPT_PRODUCTION: &str = "https://acme-v02.api.letsencrypt.org/directory";
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

impl Acme {
    /// The ACME directory: the override, or Let's Encrypt's by environment kind.
    pub fn server(&self, production: bool) -> &str {
        match (&self.server, production) {
            (Some(server), _) => server,
            (None, true) => LETS_ENCRYPT_PRODUCTION,
            (None, false) => LETS_ENCRYPT_STAGING,
        }
    }
}

/// ClusterIssuers are cluster-scoped: the environment's namespace in the name keeps dev's
/// staging issuer and prod's production issuer apart in one cluster.
pub fn issuer_name(platform: &Platform) -> String {
    format!("{}-letsencrypt", platform.environment.namespace)
}

custom_resource! {
    /// cert-manager's cluster-wide `ClusterIssuer`.
    ClusterIssuer(ClusterIssuerSpec): "cert-manager.io" / "v1", "clusterissuers", ClusterResourceScope
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterIssuerSpec {
    pub acme: AcmeIssuer,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AcmeIssuer {
    pub server: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Where cert-manager keeps the ACME account key (in its cluster resource namespace).
    pub private_key_secret_ref: SecretName,
    pub solvers: Vec<AcmeSolver>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretName {
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AcmeSolver {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http01: Option<Http01Solver>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns01: Option<Dns01Solver>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Http01Solver {
    #[serde(
        rename = "gatewayHTTPRoute",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub gateway_http_route: Option<GatewayHttpRouteSolver>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressSolver>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewayHttpRouteSolver {
    pub parent_refs: Vec<ParentReference>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IngressSolver {
    pub ingress_class_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Dns01Solver {
    pub cloudflare: CloudflareSolver,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CloudflareSolver {
    pub api_token_secret_ref: SecretKey,
}

custom_resource! {
    /// cert-manager's `Certificate`: it keeps the Secret `spec.secretName` filled with a current
    /// certificate and key.
    Certificate(CertificateSpec): "cert-manager.io" / "v1", "certificates", NamespaceResourceScope
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CertificateSpec {
    pub secret_name: String,
    pub dns_names: Vec<String>,
    pub issuer_ref: IssuerReference,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keystores: Option<Keystores>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IssuerReference {
    pub group: String,
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Keystores {
    pub pkcs12: Pkcs12Keystore,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Pkcs12Keystore {
    pub create: bool,
    pub password_secret_ref: SecretKey,
}

pub fn build(platform: &Platform, _: &Templates) -> Result<Vec<Manifest>, ComponentError> {
    if !platform.certificates.enabled {
        return Ok(Vec::new());
    }
    let app = App {
        platform,
        name: "letsencrypt",
        component: NAME,
    };
    let mut issuer_metadata = app.metadata(&issuer_name(platform));
    issuer_metadata.namespace = None;
    let mut objects = vec![manifest(
        NAME,
        &ClusterIssuer::new(issuer_metadata, issuer_spec(platform)),
    )?];
    for certificate in certificates(&app) {
        objects.push(manifest(NAME, &certificate)?);
    }
    Ok(objects)
}

fn issuer_spec(platform: &Platform) -> ClusterIssuerSpec {
    let acme = &platform.certificates.acme;
    let solver = match acme.solver {
        Solver::Http01 => AcmeSolver {
            http01: Some(match platform.exposure.mode {
                exposure::Mode::Gateway => Http01Solver {
                    gateway_http_route: Some(GatewayHttpRouteSolver {
                        parent_refs: vec![gateway_listener(platform, exposure::HTTP_LISTENER)],
                    }),
                    ingress: None,
                },
                exposure::Mode::Ingress => Http01Solver {
                    gateway_http_route: None,
                    ingress: Some(IngressSolver {
                        ingress_class_name: platform.exposure.ingress_class_name.to_string(),
                    }),
                },
            }),
            dns01: None,
        },
        Solver::Dns01 => AcmeSolver {
            http01: None,
            dns01: Some(Dns01Solver {
                cloudflare: CloudflareSolver {
                    api_token_secret_ref: acme.dns01.cloudflare_api_token_secret.clone(),
                },
            }),
        },
    };
    ClusterIssuerSpec {
        acme: AcmeIssuer {
            server: acme.server(platform.environment.production).to_owned(),
            email: acme.email.clone(),
            private_key_secret_ref: SecretName {
                name: format!("{}-account-key", issuer_name(platform)),
            },
            solvers: vec![solver],
        },
    }
}

/// The devices' MQTT keystore and the HTTPS certificate, each named after the Secret it writes.
fn certificates(app: &App) -> Vec<Certificate> {
    let platform = app.platform;
    let domain = &platform.environment.domain;
    let issuer = IssuerReference {
        group: "cert-manager.io".to_owned(),
        kind: "ClusterIssuer".to_owned(),
        name: issuer_name(platform),
    };
    let tls = &platform.hivemq.tls;
    let certificate = |secret: &DnsSubdomain, dns_names, keystores| {
        Certificate::new(
            app.metadata(secret.as_ref()),
            CertificateSpec {
                secret_name: secret.to_string(),
                dns_names,
                issuer_ref: issuer.clone(),
                keystores,
            },
        )
    };
    vec![
        // HiveMQ reads a PKCS#12 keystore, locked with the password it is given separately.
        certificate(
            &tls.secret_name,
            vec![hivemq::devices_host(domain)],
            Some(Keystores {
                pkcs12: Pkcs12Keystore {
                    create: true,
                    password_secret_ref: SecretKey {
                        name: tls.password_secret_name.clone(),
                        key: hivemq::KEYSTORE_PASSWORD_KEY.to_owned(),
                    },
                },
            }),
        ),
        certificate(
            &platform.exposure.tls_secret_name,
            platform.exposure.https_hosts(domain),
            None,
        ),
    ]
}

pub struct Hooks;

impl ComponentHooks for Hooks {
    /// HTTP-01: the edge's proxies reach the solver pods cert-manager starts in the namespace.
    fn flows(platform: &Platform) -> Vec<crate::graph::Flow> {
        if !platform.certificates.enabled || platform.certificates.acme.solver != Solver::Http01 {
            return Vec::new();
        }
        let solver = crate::graph::Peer::created_by(
            "cert-manager",
            "acme-http01-solver",
            crate::graph::Labels::from([(
                "acme.cert-manager.io/http01-solver".to_owned(),
                "true".to_owned(),
            )]),
        );
        vec![crate::graph::Flow::new(
            super::security::edge(platform),
            solver,
            vec![crate::graph::tcp(HTTP01_SOLVER_PORT)],
            "ACME HTTP-01 challenges",
        )]
    }

    fn stage() -> super::Stage {
        super::Stage::Foundation
    }

    fn kinds() -> Vec<KindSchema> {
        vec![
            KindSchema::of::<ClusterIssuer>(),
            KindSchema::of::<Certificate>(),
        ]
    }

    fn invariants(platform: &Platform, objects: &[Manifest], report: &mut Report) {
        for (field, reason, severity) in model_findings(platform, objects) {
            report.model_as(severity, field, reason);
        }
        for (object, field, reason) in object_findings(platform, objects) {
            report.object(object, field, reason);
        }
    }

    /// The keystore password a Certificate reads is HiveMQ's, which is provided externally (or
    /// rendered): cert-manager cannot write the keystore without it.
    fn references(platform: &Platform) -> Vec<crate::validate::Reference> {
        if !platform.certificates.enabled {
            return Vec::new();
        }
        let tls = &platform.hivemq.tls;
        vec![crate::validate::Reference {
            from: ("Certificate", tls.secret_name.to_string()),
            field: FieldPath::of("spec.keystores.pkcs12.passwordSecretRef.name"),
            to: ("Secret", tls.password_secret_name.to_string()),
        }]
    }

    /// cert-manager writes each Certificate's Secret; pods may mount them.
    fn operator_created(platform: &Platform) -> Vec<(&'static str, String)> {
        if !platform.certificates.enabled {
            return Vec::new();
        }
        let app = App {
            platform,
            name: "letsencrypt",
            component: NAME,
        };
        certificates(&app)
            .into_iter()
            .map(|certificate| ("Secret", certificate.spec.secret_name))
            .collect()
    }
}

/// The Secrets the rendered Certificates write.
fn written_secrets(objects: &[Manifest]) -> BTreeSet<&str> {
    objects
        .iter()
        .filter(|object| object.kind() == "Certificate")
        .map(|object| text(&object.value["spec"], "secretName"))
        .collect()
}

fn provided_externally(platform: &Platform, secret: &str) -> bool {
    platform
        .environment
        .provided_externally
        .iter()
        .any(|object| object.kind == "Secret" && object.name.as_ref() == secret)
}

/// Rules about the settings and TLS Secrets: `(field, reason, severity)`.
fn model_findings(platform: &Platform, objects: &[Manifest]) -> Vec<(String, String, Severity)> {
    let mut findings = Vec::new();
    let acme = &platform.certificates.acme;
    if platform.certificates.enabled {
        match &acme.email {
            None if platform.environment.production => findings.push((
                "certificates.acme.email".to_owned(),
                "a production environment needs the ACME account's contact e-mail, so expiry and revocation notices reach someone; set it".to_owned(),
                Severity::Error,
            )),
            Some(email) if !is_email(email) => findings.push((
                "certificates.acme.email".to_owned(),
                format!("`{email}` is not an e-mail address: use name@domain"),
                Severity::Error,
            )),
            _ => {}
        }
        if let Some(server) = &acme.server {
            if !server.starts_with("https://") {
                findings.push((
                    "certificates.acme.server".to_owned(),
                    format!("`{server}` is not an https:// ACME directory URL"),
                    Severity::Error,
                ));
            }
        }
    }
    let secret = platform.hivemq.tls.secret_name.as_ref();
    if !written_secrets(objects).contains(secret) && !provided_externally(platform, secret) {
        findings.push((
            "hivemq.tls.secretName".to_owned(),
            format!("the MQTT TLS listener's Secret `{secret}` is written by no Certificate and not declared in providedExternally: enable `certificates` or declare it"),
            Severity::Error,
        ));
    }
    findings
}

fn is_email(text: &str) -> bool {
    text.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !text.contains(char::is_whitespace)
    })
}

/// Rules about rendered objects: unused Certificates and Gateway listeners whose certificate
/// nobody writes.
fn object_findings<'a>(
    platform: &Platform,
    objects: &'a [Manifest],
) -> Vec<(&'a Manifest, FieldPath, String)> {
    let mut findings = Vec::new();
    let used = used_secrets(objects);
    for certificate in objects.iter().filter(|object| object.kind() == "Certificate") {
        let secret = text(&certificate.value["spec"], "secretName");
        if !used.contains(secret) {
            findings.push((
                certificate,
                FieldPath::of("spec.secretName"),
                format!("nothing mounts or serves Secret `{secret}`: no pod volume, Gateway listener or Ingress names it; remove the Certificate or use the Secret"),
            ));
        }
    }
    let written = written_secrets(objects);
    for gateway in objects.iter().filter(|object| object.kind() == "Gateway") {
        for (listener_index, listener) in items(gateway.value.pointer("/spec/listeners")) {
            for (index, reference) in items(listener.pointer("/tls/certificateRefs")) {
                let secret = text(reference, "name");
                if !written.contains(secret) && !provided_externally(platform, secret) {
                    let field = FieldPath::of("spec.listeners")
                        .index(listener_index)
                        .key("tls")
                        .key("certificateRefs")
                        .index(index)
                        .key("name");
                    findings.push((
                        gateway,
                        field,
                        format!("Secret `{secret}` is written by no Certificate and not declared in providedExternally; the listener would serve no certificate"),
                    ));
                }
            }
        }
    }
    findings
}

/// Every Secret an object other than a Certificate names as a `secretName` (pod volumes, Ingress
/// TLS) or in Gateway `certificateRefs`.
fn used_secrets(objects: &[Manifest]) -> BTreeSet<&str> {
    fn walk<'a>(value: &'a Value, found: &mut BTreeSet<&'a str>) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    match (key.as_str(), inner) {
                        ("secretName", Value::String(name)) => {
                            found.insert(name);
                        }
                        ("certificateRefs", Value::Array(references)) => {
                            found.extend(references.iter().map(|reference| text(reference, "name")));
                        }
                        _ => walk(inner, found),
                    }
                }
            }
            Value::Array(values) => values.iter().for_each(|inner| walk(inner, found)),
            _ => {}
        }
    }
    let mut found = BTreeSet::new();
    for object in objects.iter().filter(|object| object.kind() != "Certificate") {
        walk(&object.value, &mut found);
    }
    found
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::ExternalObject;
    use crate::resolve::tests::{platform, templates};
    use crate::validate::testing::{set, triples};
    use crate::validate::validate;

    fn objects_of(platform: &Platform) -> Vec<Manifest> {
        crate::components::build_all(platform, &templates()).unwrap()
    }

    fn find<'a>(objects: &'a [Manifest], kind: &str, name: &str) -> &'a Value {
        &objects
            .iter()
            .find(|object| object.kind() == kind && object.name() == name)
            .unwrap_or_else(|| panic!("no {kind}/{name}"))
            .value
    }

    /// Every finding of the whole validation, as (object, field, reason).
    fn findings(platform: &Platform, objects: &[Manifest]) -> Vec<(String, String, String)> {
        triples(validate(objects, platform))
    }

    #[test]
    fn dev_issues_from_staging_and_prod_from_production_unless_overridden() {
        for (environment, server) in [
            ("dev", LETS_ENCRYPT_STAGING),
            ("prod", LETS_ENCRYPT_PRODUCTION),
        ] {
            let platform = platform(environment);
            let objects = objects_of(&platform);
            let name = format!("ehs-{environment}-letsencrypt");
            let issuer = find(&objects, "ClusterIssuer", &name);
            assert_eq!(issuer["spec"]["acme"]["server"], server, "{environment}");
            assert!(issuer["metadata"].get("namespace").is_none());
            for certificate in objects.iter().filter(|o| o.kind() == "Certificate") {
                assert_eq!(certificate.value["spec"]["issuerRef"]["name"], name.as_str());
            }
        }
        let mut platform = platform("dev");
        platform.certificates.acme.server = Some("https://acme.internal/directory".to_owned());
        let objects = objects_of(&platform);
        let issuer = find(&objects, "ClusterIssuer", "ehs-dev-letsencrypt");
        assert_eq!(
            issuer["spec"]["acme"]["server"],
            "https://acme.internal/directory"
        );
    }

    #[test]
    fn the_mqtt_certificate_writes_the_keystore_hivemq_mounts() {
        let mut platform = platform("prod");
        platform.hivemq.tls.secret_name = "devices-keystore".into();
        platform.hivemq.tls.password_secret_name = "devices-keystore-password".into();
        let objects = objects_of(&platform);
        let spec = &find(&objects, "Certificate", "devices-keystore")["spec"];
        assert_eq!(spec["secretName"], "devices-keystore");
        assert_eq!(spec["dnsNames"], json!(["mqtt.energy.example.com"]));
        assert_eq!(spec["keystores"]["pkcs12"]["create"], true);
        assert_eq!(
            spec["keystores"]["pkcs12"]["passwordSecretRef"],
            json!({"name": "devices-keystore-password", "key": "password"})
        );
        let https = &find(&objects, "Certificate", "ehs-gateway-tls")["spec"];
        assert_eq!(https["dnsNames"], json!(["hivemq.energy.example.com"]));
        assert!(https.get("keystores").is_none());
        // The renamed Secrets resolve through the Certificate, not providedExternally.
        platform
            .environment
            .provided_externally
            .push(ExternalObject {
                kind: "Secret".to_owned(),
                name: "devices-keystore-password".into(),
            });
        assert_eq!(findings(&platform, &objects_of(&platform)), Vec::new());
    }

    #[test]
    fn the_solver_follows_the_exposure_mode_or_uses_dns01() {
        let mut platform = platform("prod");
        let solver = |platform: &Platform| {
            let objects = objects_of(platform);
            find(&objects, "ClusterIssuer", "ehs-prod-letsencrypt")["spec"]["acme"]["solvers"]
                .clone()
        };
        assert_eq!(
            solver(&platform)[0]["http01"]["gatewayHTTPRoute"]["parentRefs"],
            json!([{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                    "name": "ehs-gateway", "namespace": "ehs-prod", "sectionName": "http"}])
        );
        platform.exposure.mode = exposure::Mode::Ingress;
        platform.exposure.ingress_class_name = "traefik".into();
        assert_eq!(
            solver(&platform),
            json!([{"http01": {"ingress": {"ingressClassName": "traefik"}}}])
        );
        platform.certificates.acme.solver = Solver::Dns01;
        assert_eq!(
            solver(&platform),
            json!([{"dns01": {"cloudflare": {"apiTokenSecretRef":
                {"name": "cloudflare-api-token", "key": "api-token"}}}}])
        );
    }

    #[test]
    fn production_needs_a_contact_email_and_an_https_server() {
        let mut platform = platform("prod");
        platform.certificates.acme.email = None;
        let objects = objects_of(&platform);
        let found = findings(&platform, &objects);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "environment");
        assert_eq!(found[0].1, "certificates.acme.email");
        assert!(found[0].2.contains("contact e-mail"), "{}", found[0].2);
        // Development environments may go without.
        let mut dev = crate::resolve::tests::platform("dev");
        assert_eq!(findings(&dev, &objects_of(&dev)), Vec::new());
        dev.certificates.acme.email = Some("ops at example.com".to_owned());
        dev.certificates.acme.server = Some("http://acme.example.com".to_owned());
        let fields: Vec<String> = findings(&dev, &objects_of(&dev))
            .into_iter()
            .map(|(_, field, _)| field)
            .collect();
        assert_eq!(
            fields,
            ["certificates.acme.email", "certificates.acme.server"]
        );
    }

    #[test]
    fn without_certificates_every_tls_secret_must_be_provided_externally() {
        let mut platform = platform("prod");
        platform.certificates.enabled = false;
        let objects = objects_of(&platform);
        assert!(!objects.iter().any(|object| object.component == NAME));
        let found = findings(&platform, &objects);
        let places: Vec<(&str, &str)> = found
            .iter()
            .map(|(object, field, _)| (object.as_str(), field.as_str()))
            .collect();
        assert!(
            places.contains(&("environment", "hivemq.tls.secretName")),
            "{found:?}"
        );
        assert!(
            places.contains(&(
                "exposure/Gateway/ehs-gateway",
                "spec.listeners[1].tls.certificateRefs[0].name"
            )),
            "{found:?}"
        );
        for secret in ["hivemq-mqtt-tls", "ehs-gateway-tls"] {
            platform
                .environment
                .provided_externally
                .push(ExternalObject {
                    kind: "Secret".to_owned(),
                    name: secret.into(),
                });
        }
        assert_eq!(findings(&platform, &objects), Vec::new());
    }

    #[test]
    fn a_certificate_whose_secret_nobody_uses_is_reported() {
        let platform = platform("prod");
        let mut objects = objects_of(&platform);
        set(
            &mut objects,
            "Certificate",
            "ehs-gateway-tls",
            "/spec/secretName",
            json!("forgotten-tls"),
        );
        let found = findings(&platform, &objects);
        let places: Vec<(&str, &str)> = found
            .iter()
            .map(|(object, field, _)| (object.as_str(), field.as_str()))
            .collect();
        assert!(
            places.contains(&(
                "certificates/Certificate/ehs-gateway-tls",
                "spec.secretName"
            )),
            "{found:?}"
        );
        // …and the Gateway's listener now names a Secret no Certificate writes.
        assert!(
            places.contains(&(
                "exposure/Gateway/ehs-gateway",
                "spec.listeners[1].tls.certificateRefs[0].name"
            )),
            "{found:?}"
        );
    }
}
