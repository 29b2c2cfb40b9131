//! Merges each component's defaults with the environment's overrides into complete settings.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::components;
use crate::load::{defaults_path, Defaults, EnvironmentFile};
use crate::model::{DnsLabel, DnsSubdomain, ExternalObject};

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(
        "{defaults_file}: `{field}` has no value; give it a default there (environments may \
         override it in `{environment_file}`)"
    )]
    Incomplete {
        defaults_file: String,
        environment_file: String,
        field: String,
    },
    #[error(
        "{environment_file}: `{component}.{field}` (with the defaults of `{defaults_file}`): \
         {message}"
    )]
    Invalid {
        environment_file: String,
        defaults_file: String,
        component: &'static str,
        field: String,
        message: String,
    },
    #[error("{file}: {component} settings could not be combined")]
    Internal {
        file: String,
        component: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// Defines [`Platform`] and [`resolve_components`] with one field per registered component.
macro_rules! define_platform {
    ($($component:ident => $key:ident),* $(,)?) => {
        /// One environment, fully resolved: everything the components build from.
        #[derive(Debug, Clone)]
        pub struct Platform {
            pub environment: EnvironmentInfo,
            $(pub $component: components::$component::Settings,)*
            /// The upstream pin list, `components/upstream.yaml`.
            pub upstream: crate::upstream::Upstream,
        }

        /// Every component's defaults overlaid with the environment file's overrides.
        fn resolve_components(
            environment: EnvironmentInfo,
            file: &EnvironmentFile,
            defaults: &Defaults,
        ) -> Result<Platform, ResolveError> {
            Ok(Platform {
                environment,
                $($component: layered(
                    components::$component::NAME,
                    file,
                    &defaults.$component,
                    file.environment.$key.as_ref(),
                )?,)*
                upstream: defaults.upstream.clone(),
            })
        }
    };
}
components::for_each_component!(define_platform);

#[derive(Debug, Clone)]
pub struct EnvironmentInfo {
    /// File stem of the environment file, e.g. `prod`.
    pub name: String,
    pub namespace: DnsLabel,
    pub domain: DnsSubdomain,
    pub production: bool,
    pub provided_externally: Vec<ExternalObject>,
}

pub fn resolve(file: &EnvironmentFile, defaults: &Defaults) -> Result<Platform, ResolveError> {
    let environment = &file.environment;
    let info = EnvironmentInfo {
        name: file.name.clone(),
        namespace: environment.namespace.clone(),
        domain: environment.domain.clone(),
        production: environment.production,
        provided_externally: environment.provided_externally.clone(),
    };
    resolve_components(info, file, defaults)
}

/// Overlays an environment's layer on a component's defaults: maps merge key by key, anything
/// else set in the environment replaces the default, and unset (`null`) fields keep it.
fn layered<L: Serialize, S: DeserializeOwned>(
    component: &'static str,
    file: &EnvironmentFile,
    defaults: &L,
    overrides: Option<&L>,
) -> Result<S, ResolveError> {
    let internal = |source| ResolveError::Internal {
        file: file.path.clone(),
        component,
        source,
    };
    let mut merged = serde_json::to_value(defaults).map_err(internal)?;
    if let Some(overrides) = overrides {
        overlay(
            &mut merged,
            serde_json::to_value(overrides).map_err(internal)?,
        );
    }
    // An unset field serialises as null; dropping it makes serde report it as missing.
    remove_nulls(&mut merged);
    serde_path_to_error::deserialize(merged).map_err(|error| {
        if error.inner().to_string().starts_with("missing field `") {
            ResolveError::Incomplete {
                defaults_file: defaults_path(component),
                environment_file: file.path.clone(),
                field: missing_field(&error),
            }
        } else {
            // A settings type's own rule refused the combined value.
            ResolveError::Invalid {
                environment_file: file.path.clone(),
                defaults_file: defaults_path(component),
                component,
                field: error.path().to_string(),
                message: error.inner().to_string(),
            }
        }
    })
}

/// The dotted path of the field that is missing, e.g. `storage.size`.
fn missing_field(error: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let parent = error.path().to_string();
    let message = error.inner().to_string();
    let field = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
        .unwrap_or(&message);
    if parent == "." {
        field.to_owned()
    } else {
        format!("{parent}.{field}")
    }
}

fn remove_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, entry| !entry.is_null());
            map.values_mut().for_each(remove_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(remove_nulls),
        _ => {}
    }
}

fn overlay(base: &mut Value, top: Value) {
    match (base, top) {
        (_, Value::Null) => {}
        (Value::Object(base), Value::Object(top)) => {
            // An image digest identifies the content of one repository and tag: a layer that
            // names another repository or tag but no digest must not inherit it, or the runtime
            // would silently pull the old content by digest.
            let names_other_image = ["repository", "tag"]
                .iter()
                .any(|key| top.get(*key).is_some_and(|value| !value.is_null()));
            if names_other_image && top.get("digest").is_none_or(Value::is_null) {
                base.remove("digest");
            }
            for (key, value) in top {
                overlay(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, top) => *base = top,
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::load::Repo;
    use crate::templates::Templates;

    pub fn repo() -> Repo {
        Repo {
            root: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
        }
    }

    /// The committed environment, resolved against the committed defaults.
    pub fn platform(name: &str) -> Platform {
        let repo = repo();
        resolve(&repo.environment(name).unwrap(), &repo.defaults().unwrap()).unwrap()
    }

    pub fn templates() -> Templates {
        repo().templates().unwrap()
    }

    #[test]
    fn environment_overrides_only_what_it_sets() {
        let dev = platform("dev");
        let prod = platform("prod");
        assert_eq!(prod.kafka.replicas.get(), 3);
        assert_eq!(dev.kafka.replicas.get(), 1);
        // Set only in the defaults, so both environments share it.
        assert_eq!(prod.kafka.image.repository, dev.kafka.image.repository);
        assert_eq!(
            prod.bridge.mqtt.credentials_secret,
            dev.bridge.mqtt.credentials_secret
        );
    }

    #[test]
    fn every_component_takes_its_overrides_from_its_own_key() {
        let file = EnvironmentFile {
            name: "x".to_owned(),
            path: "environments/x.yaml".to_owned(),
            environment: crate::load::parse_yaml(
                "environments/x.yaml",
                "namespace: x\ndomain: x.example.com\n\
                 namespaceSettings: {podSecurityLevel: baseline}\n\
                 kafka: {replicas: 5}\nbridge: {replicas: 7}\n",
            )
            .unwrap(),
        };
        let platform = resolve(&file, &repo().defaults().unwrap()).unwrap();
        assert_eq!(
            platform.namespace.pod_security_level,
            components::namespace::PodSecurityLevel::Baseline
        );
        assert_eq!(platform.kafka.replicas.get(), 5);
        assert_eq!(platform.bridge.replicas.get(), 7);
    }

    #[test]
    fn overlay_merges_maps_and_replaces_everything_else() {
        let mut base = serde_json::json!({"a": {"b": 1, "c": 2}, "list": [1, 2], "keep": true});
        overlay(
            &mut base,
            serde_json::json!({"a": {"c": 3}, "list": [9], "keep": null}),
        );
        assert_eq!(
            base,
            serde_json::json!({"a": {"b": 1, "c": 3}, "list": [9], "keep": true})
        );
    }

    #[test]
    fn a_layer_naming_another_tag_drops_the_digest_of_the_default_tag() {
        let default =
            serde_json::json!({"image": {"repository": "r", "tag": "1", "digest": "sha256:aa"}});
        let mut base = default.clone();
        overlay(&mut base, serde_json::json!({"image": {"tag": "2"}}));
        assert_eq!(
            base,
            serde_json::json!({"image": {"repository": "r", "tag": "2"}})
        );
        let mut base = default.clone();
        overlay(
            &mut base,
            serde_json::json!({"image": {"tag": "2", "digest": "sha256:bb"}}),
        );
        assert_eq!(
            base,
            serde_json::json!({"image": {"repository": "r", "tag": "2", "digest": "sha256:bb"}})
        );
        let mut base = default.clone();
        overlay(&mut base, serde_json::json!({"replicas": 3}));
        assert_eq!(base["image"], default["image"]);
    }

    #[test]
    fn a_setting_without_default_names_the_defaults_file_and_field() {
        let repo = repo();
        let mut defaults = repo.defaults().unwrap();
        defaults.kafka.storage.as_mut().unwrap().size = None;
        let error = resolve(&repo.environment("dev").unwrap(), &defaults).unwrap_err();
        assert_eq!(
            error.to_string(),
            "components/kafka/defaults.yaml: `storage.size` has no value; give it a default \
             there (environments may override it in `environments/dev.yaml`)"
        );
    }
}
