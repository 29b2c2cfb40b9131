//! minijinja templates of configuration files that end up inside ConfigMaps.
//!
//! Templates are named `<component>/<file>.j2` after their path under `components/`. Undefined
//! variables are errors, so a typo in a template fails the render instead of emitting a blank.

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, Value};
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("components/{name}: template is invalid")]
    Parse {
        name: String,
        #[source]
        source: minijinja::Error,
    },
    #[error("components/{name}: rendering failed")]
    Render {
        name: String,
        #[source]
        source: minijinja::Error,
    },
}

pub struct Templates {
    environment: Environment<'static>,
}

impl Templates {
    /// `sources` are `(name, text)` pairs, e.g. `("kafka/server.properties.j2", "...")`.
    pub fn new(sources: impl IntoIterator<Item = (String, String)>) -> Result<Self, TemplateError> {
        let mut environment = Environment::new();
        environment.set_undefined_behavior(UndefinedBehavior::Strict);
        // Config files end with a newline like any text file; minijinja drops it by default.
        let syntax = SyntaxConfig::builder().keep_trailing_newline(true).build();
        environment.set_syntax(syntax.map_err(|source| TemplateError::Parse {
            name: "(syntax)".to_owned(),
            source,
        })?);
        for (name, text) in sources {
            environment
                .add_template_owned(name.clone(), text)
                .map_err(|source| TemplateError::Parse { name, source })?;
        }
        Ok(Templates { environment })
    }

    pub fn render(&self, name: &str, context: impl Serialize) -> Result<String, TemplateError> {
        let failed = |source| TemplateError::Render {
            name: name.to_owned(),
            source,
        };
        self.environment
            .get_template(name)
            .map_err(failed)?
            .render(Value::from(Serde(context)))
            .map_err(failed)
    }
}
