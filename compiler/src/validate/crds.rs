//! `--crds DIR`: every custom resource against the `openAPIV3Schema` of the
//! CustomResourceDefinition its operator installs, as strictly as a server-side apply with
//! `--validate=strict` would check it.
//!
//! The typed schema check (`schema`) proves a custom resource matches our own struct; this one
//! proves our struct matches the operator's. The CRD schema is tightened before use:
//! - unknown fields fail wherever the schema lists `properties` and neither allows
//!   `additionalProperties` nor says `x-kubernetes-preserve-unknown-fields`;
//! - `x-kubernetes-int-or-string` accepts an integer or a string, nothing else;
//! - `x-kubernetes-embedded-resource` objects may carry `apiVersion`, `kind` and `metadata`;
//! - `nullable: true` accepts `null`.
//!
//! CEL rules (`x-kubernetes-validations`) are not evaluated: only the API server can.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use jsonschema::Validator;
use serde_json::{json, Value};

use super::schema::{self, Registry};
use super::Report;
use crate::manifest::Manifest;

#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    #[error("{path}: cannot read the CRD directory")]
    ReadDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot read")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not valid YAML: {message}")]
    Parse { path: String, message: String },
    #[error(
        "{path}: document {document}: a CustomResourceDefinition needs `{field}`; \
         is this an apiextensions.k8s.io/v1 CRD?"
    )]
    Malformed {
        path: String,
        document: usize,
        field: &'static str,
    },
}

/// The CustomResourceDefinitions found in one directory, keyed by API group and kind.
pub struct Crds {
    dir: String,
    kinds: BTreeMap<(String, String), Crd>,
}

/// One CRD: where it came from and the schema of each version it serves.
struct Crd {
    name: String,
    file: String,
    /// `spec.scope` is `Namespaced` (rather than `Cluster`).
    namespaced: bool,
    versions: BTreeMap<String, CrdVersion>,
}

struct CrdVersion {
    /// The tightened `openAPIV3Schema`.
    schema: Value,
    /// Compiled on first use: a directory holds many CRDs the environments never use.
    validator: OnceLock<Result<Validator, String>>,
}

impl CrdVersion {
    fn validator(&self) -> &Result<Validator, String> {
        self.validator.get_or_init(|| {
            jsonschema::validator_for(&self.schema).map_err(|error| error.to_string())
        })
    }
}

impl Crds {
    /// Reads every `*.yaml` / `*.yml` file in `dir`, each possibly holding several documents.
    /// Documents that are not CustomResourceDefinitions are ignored.
    pub fn load(dir: &Path) -> Result<Self, CrdError> {
        let shown = dir.display().to_string();
        let entries = std::fs::read_dir(dir).map_err(|source| CrdError::ReadDir {
            path: shown.clone(),
            source,
        })?;
        let mut files: Vec<PathBuf> = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|source| CrdError::ReadDir {
                    path: shown.clone(),
                    source,
                })?
                .path();
            let yaml = path
                .extension()
                .is_some_and(|extension| extension == "yaml" || extension == "yml");
            if yaml && path.is_file() {
                files.push(path);
            }
        }
        // Sorted, so which file wins when two define the same kind does not depend on the
        // file system's order.
        files.sort();
        let mut crds = Self {
            dir: shown,
            kinds: BTreeMap::new(),
        };
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|source| CrdError::Read {
                path: file.display().to_string(),
                source,
            })?;
            crds.add_file(&file.display().to_string(), &text)?;
        }
        Ok(crds)
    }

    fn add_file(&mut self, path: &str, text: &str) -> Result<(), CrdError> {
        let documents: Vec<Value> =
            serde_saphyr::from_multiple(text).map_err(|error| CrdError::Parse {
                path: path.to_owned(),
                message: error.to_string(),
            })?;
        for (index, document) in documents.into_iter().enumerate() {
            let is_crd =
                document.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition");
            if !is_crd {
                continue;
            }
            let malformed = |field| CrdError::Malformed {
                path: path.to_owned(),
                document: index + 1,
                field,
            };
            let text_at = |pointer: &str, field| {
                document
                    .pointer(pointer)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| malformed(field))
            };
            let group = text_at("/spec/group", "spec.group")?;
            let kind = text_at("/spec/names/kind", "spec.names.kind")?;
            let name = text_at("/metadata/name", "metadata.name")?;
            let namespaced = text_at("/spec/scope", "spec.scope")? == "Namespaced";
            let mut versions = BTreeMap::new();
            let listed = document
                .pointer("/spec/versions")
                .and_then(Value::as_array)
                .ok_or_else(|| malformed("spec.versions"))?;
            for version in listed {
                let served = version.get("served").and_then(Value::as_bool) != Some(false);
                if !served {
                    continue;
                }
                let version_name = version
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| malformed("spec.versions[].name"))?;
                let mut schema = version
                    .pointer("/schema/openAPIV3Schema")
                    .cloned()
                    .ok_or_else(|| malformed("spec.versions[].schema.openAPIV3Schema"))?;
                tighten(&mut schema);
                versions.insert(
                    version_name.to_owned(),
                    CrdVersion {
                        schema,
                        validator: OnceLock::new(),
                    },
                );
            }
            self.kinds.entry((group, kind)).or_insert(Crd {
                name,
                namespaced,
                file: path.to_owned(),
                versions,
            });
        }
        Ok(())
    }
}

/// Makes a CRD schema as strict as a strict server-side apply.
fn tighten(schema: &mut Value) {
    schema::visit_schemas(schema, &mut |schema| {
        if schema.get("x-kubernetes-embedded-resource") == Some(&Value::Bool(true)) {
            let properties = schema
                .entry("properties")
                .or_insert_with(|| json!({}))
                .as_object_mut();
            if let Some(properties) = properties {
                for (field, definition) in embedded_resource_fields() {
                    properties.entry(field).or_insert(definition);
                }
            }
        }
        if schema.get("nullable") == Some(&Value::Bool(true)) {
            if let Some(Value::String(single)) = schema.get("type") {
                let types = json!([single, "null"]);
                schema.insert("type".into(), types);
            }
        }
    });
    // Every object has these whether or not the CRD lists them (Fabric8's generator does not);
    // `metadata` is ObjectMeta, which the typed schema check already holds to Kubernetes' rules.
    if let Some(properties) = schema
        .as_object_mut()
        .map(|root| root.entry("properties").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
    {
        for field in ["apiVersion", "kind"] {
            properties
                .entry(field)
                .or_insert_with(|| json!({"type": "string"}));
        }
        properties
            .entry("metadata")
            .or_insert_with(|| json!({"type": "object"}));
    }
    schema::constrain_int_or_string(schema);
    schema::forbid_unknown_fields(schema);
}

/// What the API server accepts besides the declared properties of an embedded resource: its
/// type and the metadata fields it keeps (pruning drops the rest of `ObjectMeta`).
fn embedded_resource_fields() -> [(String, Value); 3] {
    let strings = json!({"type": "object", "additionalProperties": {"type": "string"}});
    [
        ("apiVersion".into(), json!({"type": "string"})),
        ("kind".into(), json!({"type": "string"})),
        (
            "metadata".into(),
            json!({"type": "object", "additionalProperties": false, "properties": {
                "name": {"type": "string"},
                "generateName": {"type": "string"},
                "namespace": {"type": "string"},
                "labels": strings,
                "annotations": strings,
                "finalizers": {"type": "array", "items": {"type": "string"}},
            }}),
        ),
    ]
}

/// Checks every object whose kind is a custom resource against its CRD.
pub(super) fn check(objects: &[Manifest], registry: &Registry, crds: &Crds, report: &mut Report) {
    for manifest in objects {
        let (api_version, kind) = (manifest.api_version(), manifest.kind());
        // Kinds no component declares are already a finding of the schema check.
        if registry.is_custom(api_version, kind) != Some(true) {
            continue;
        }
        let namespaced = registry.is_namespaced(api_version, kind);
        check_object(manifest, namespaced, crds, report);
    }
}

/// `declared_namespaced`: the scope the component's typed kind declares, if it declares one.
fn check_object(
    manifest: &Manifest,
    declared_namespaced: Option<bool>,
    crds: &Crds,
    report: &mut Report,
) {
    let (api_version, kind) = (manifest.api_version(), manifest.kind());
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let Some(crd) = crds.kinds.get(&(group.to_owned(), kind.to_owned())) else {
        report.object(
            manifest,
            "kind",
            format!(
                "no CustomResourceDefinition for kind `{kind}` of group `{group}` in {}; \
                 add the CRD its operator installs to that directory",
                crds.dir
            ),
        );
        return;
    };
    let Some(served) = crd.versions.get(version) else {
        let versions: Vec<&str> = crd.versions.keys().map(String::as_str).collect();
        report.object(
            manifest,
            "apiVersion",
            format!(
                "the CRD {} ({}) does not serve version `{version}`; it serves: {}",
                crd.name,
                crd.file,
                versions.join(", ")
            ),
        );
        return;
    };
    if declared_namespaced.is_some_and(|namespaced| namespaced != crd.namespaced) {
        let scope = |namespaced| {
            if namespaced {
                "namespaced"
            } else {
                "cluster-scoped"
            }
        };
        report.object(
            manifest,
            "kind",
            format!(
                "the CRD {} ({}) makes `{kind}` {}, but its component declares it {}; fix the \
                 `Resource::Scope` of the type behind its `KindSchema`",
                crd.name,
                crd.file,
                scope(crd.namespaced),
                scope(!crd.namespaced)
            ),
        );
    }
    match served.validator() {
        Ok(validator) => schema::report_errors(manifest, validator, &served.schema, report),
        Err(error) => report.object(
            manifest,
            "kind",
            format!(
                "the openAPIV3Schema of {} version {version} ({}) does not compile: {error}",
                crd.name, crd.file
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CRD in the shape controller-gen writes, reduced to what the tests need.
    const WIDGETS: &str = r#"
# a comment before the first document
---
apiVersion: v1
kind: ConfigMap
metadata: {name: not-a-crd}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        # As Fabric8 writes them: apiVersion, kind and metadata left implicit.
        type: object
        properties:
          spec:
            type: object
            properties:
              port:
                x-kubernetes-int-or-string: true
              size: {type: integer}
              note: {type: string, nullable: true}
              extra:
                type: object
                x-kubernetes-preserve-unknown-fields: true
              template:
                type: object
                x-kubernetes-embedded-resource: true
                properties:
                  spec: {type: object}
  - name: v1alpha1
    served: false
    storage: false
    schema:
      openAPIV3Schema: {type: object}
"#;

    fn crds() -> Crds {
        let mut crds = Crds {
            dir: "crds".into(),
            kinds: BTreeMap::new(),
        };
        crds.add_file("crds/widgets.yaml", WIDGETS).unwrap();
        crds
    }

    fn findings(crds: &Crds, value: Value) -> Vec<(String, String)> {
        let mut report = Report::new("test");
        let manifest = Manifest {
            component: "widget".into(),
            value,
        };
        check_object(&manifest, Some(true), crds, &mut report);
        report
            .into_sorted()
            .into_iter()
            .map(|finding| (finding.field, finding.reason))
            .collect()
    }

    fn widget(spec: Value) -> Value {
        json!({"apiVersion": "example.com/v1", "kind": "Widget",
               "metadata": {"name": "w", "namespace": "ehs-dev"}, "spec": spec})
    }

    #[test]
    fn only_custom_resource_definitions_are_read_and_only_served_versions() {
        let crds = crds();
        let keys: Vec<(String, String)> = crds.kinds.keys().cloned().collect();
        assert_eq!(keys, [("example.com".to_owned(), "Widget".to_owned())]);
        let versions: Vec<&String> = crds
            .kinds
            .values()
            .flat_map(|crd| crd.versions.keys())
            .collect();
        assert_eq!(versions, ["v1"]);
    }

    #[test]
    fn a_valid_widget_passes() {
        let spec = json!({"port": 8080, "size": 3, "note": null,
                          "extra": {"anything": {"goes": [1, 2]}},
                          "template": {"apiVersion": "v1", "kind": "Pod",
                                       "metadata": {"name": "p", "labels": {"app": "w"}},
                                       "spec": {"containers": []}}});
        assert_eq!(findings(&crds(), widget(spec)), []);
        assert_eq!(findings(&crds(), widget(json!({"port": "http"}))), []);
    }

    #[test]
    fn unknown_fields_fail_where_the_schema_lists_properties() {
        let found = findings(&crds(), widget(json!({"size": 3, "colour": "red"})));
        assert_eq!(
            found,
            [(
                "spec.colour".to_owned(),
                "unknown field `colour`; valid fields here: extra, note, port, size, template"
                    .to_owned()
            )]
        );
        let found = findings(
            &crds(),
            widget(json!({"template": {"metadata": {"uid": "x"}}})),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "spec.template.metadata.uid");
    }

    #[test]
    fn int_or_string_accepts_nothing_else() {
        let found = findings(&crds(), widget(json!({"port": [80]})));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "spec.port");
        assert!(found[0].1.contains("an integer or a string"), "{found:?}");
        let found = findings(&crds(), widget(json!({"size": "three"})));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "spec.size");
    }

    #[test]
    fn a_missing_crd_or_version_names_the_kind_and_the_directory() {
        let mut gadget = widget(json!({}));
        gadget["kind"] = json!("Gadget");
        assert_eq!(
            findings(&crds(), gadget),
            [(
                "kind".to_owned(),
                "no CustomResourceDefinition for kind `Gadget` of group `example.com` in crds; \
                 add the CRD its operator installs to that directory"
                    .to_owned()
            )]
        );
        let mut old = widget(json!({}));
        old["apiVersion"] = json!("example.com/v1alpha1");
        assert_eq!(
            findings(&crds(), old),
            [(
                "apiVersion".to_owned(),
                "the CRD widgets.example.com (crds/widgets.yaml) does not serve version \
                 `v1alpha1`; it serves: v1"
                    .to_owned()
            )]
        );
    }

    #[test]
    fn the_crds_scope_must_be_the_one_the_component_declares() {
        let mut report = Report::new("test");
        let manifest = Manifest {
            component: "widget".into(),
            value: widget(json!({})),
        };
        check_object(&manifest, Some(false), &crds(), &mut report);
        let found: Vec<String> = report
            .into_sorted()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            found,
            [
                "test: widget/Widget/w: kind: the CRD widgets.example.com (crds/widgets.yaml) \
              makes `Widget` namespaced, but its component declares it cluster-scoped; fix the \
              `Resource::Scope` of the type behind its `KindSchema`"
            ]
        );
    }

    #[test]
    fn a_crd_without_a_group_is_an_error_naming_file_and_field() {
        let broken = WIDGETS.replace("  group: example.com\n", "");
        let mut crds = crds();
        let error = crds.add_file("crds/broken.yaml", &broken).unwrap_err();
        assert_eq!(
            error.to_string(),
            "crds/broken.yaml: document 2: a CustomResourceDefinition needs `spec.group`; \
             is this an apiextensions.k8s.io/v1 CRD?"
        );
    }
}
