//! MQTT topic filters (`+`, `#`) and the pattern that extracts home and device ids from a topic.
//! What is valid is decided by `ehs_contract::validate_topic_filter` and
//! `validate_topic_pattern`, which the compiler applies to the same values at load time.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TopicError {
    #[error("{0}")]
    InvalidFilter(String),
    #[error("{0}")]
    InvalidPattern(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum FilterLevel {
    Literal(String),
    AnyOne,
    AnyRest,
}

/// A parsed MQTT topic filter, matched per MQTT 5 §4.7 (`$`-topics are not matched by a leading
/// wildcard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicFilter {
    text: String,
    levels: Vec<FilterLevel>,
}

impl TopicFilter {
    pub fn parse(text: &str) -> Result<Self, TopicError> {
        ehs_contract::validate_topic_filter(text).map_err(TopicError::InvalidFilter)?;
        let levels = text
            .split('/')
            .map(|level| match level {
                "#" => FilterLevel::AnyRest,
                "+" => FilterLevel::AnyOne,
                literal => FilterLevel::Literal(literal.to_owned()),
            })
            .collect();
        Ok(Self {
            text: text.to_owned(),
            levels,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn matches(&self, topic: &str) -> bool {
        if topic.starts_with('$') && !matches!(self.levels.first(), Some(FilterLevel::Literal(_))) {
            return false;
        }
        let mut topic_levels = topic.split('/');
        for level in &self.levels {
            match level {
                // `a/#` also matches `a` (the parent level).
                FilterLevel::AnyRest => return true,
                FilterLevel::AnyOne => {
                    if topic_levels.next().is_none() {
                        return false;
                    }
                }
                FilterLevel::Literal(literal) => {
                    if topic_levels.next() != Some(literal.as_str()) {
                        return false;
                    }
                }
            }
        }
        topic_levels.next().is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PatternLevel {
    Literal(usize),
    Any,
    Home,
    Device,
    Metric,
}

/// `ehs/{home}/{device}/telemetry`: a topic matches when it has the same number of levels, every
/// literal level is equal and every placeholder level is non-empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPattern {
    literals: Vec<String>,
    levels: Vec<PatternLevel>,
}

/// Ids borrowed from the topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicIds<'a> {
    pub home: &'a str,
    pub device: &'a str,
    /// The `{metric}` level when the pattern has one, else the last topic level.
    pub metric: &'a str,
}

impl TopicPattern {
    pub fn parse(pattern: &str) -> Result<Self, TopicError> {
        ehs_contract::validate_topic_pattern(pattern).map_err(TopicError::InvalidPattern)?;
        let mut literals = Vec::new();
        let levels = pattern
            .split('/')
            .map(|level| match level {
                "{home}" => PatternLevel::Home,
                "{device}" => PatternLevel::Device,
                "{metric}" => PatternLevel::Metric,
                "+" => PatternLevel::Any,
                literal => {
                    literals.push(literal.to_owned());
                    PatternLevel::Literal(literals.len() - 1)
                }
            })
            .collect();
        Ok(Self { literals, levels })
    }

    pub fn extract<'a>(&self, topic: &'a str) -> Option<TopicIds<'a>> {
        let mut ids = TopicIds {
            home: "",
            device: "",
            metric: "",
        };
        let mut topic_levels = topic.split('/');
        let mut last = "";
        for level in &self.levels {
            let value = topic_levels.next()?;
            last = value;
            match *level {
                PatternLevel::Literal(index) => {
                    if self.literals.get(index).map(String::as_str) != Some(value) {
                        return None;
                    }
                }
                PatternLevel::Any => {}
                PatternLevel::Home if !value.is_empty() => ids.home = value,
                PatternLevel::Device if !value.is_empty() => ids.device = value,
                PatternLevel::Metric if !value.is_empty() => ids.metric = value,
                PatternLevel::Home | PatternLevel::Device | PatternLevel::Metric => return None,
            }
        }
        if topic_levels.next().is_some() {
            return None;
        }
        if ids.metric.is_empty() {
            ids.metric = last;
        }
        Some(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(text: &str) -> TopicFilter {
        TopicFilter::parse(text).expect("valid filter")
    }

    #[test]
    fn single_level_wildcard() {
        let f = filter("ehs/+/+/telemetry");
        assert!(f.matches("ehs/h1/d1/telemetry"));
        assert!(!f.matches("ehs/h1/telemetry"));
        assert!(!f.matches("ehs/h1/d1/telemetry/x"));
        assert!(f.matches("ehs//d1/telemetry"), "+ matches an empty level");
    }

    #[test]
    fn multi_level_wildcard() {
        let f = filter("ehs/#");
        assert!(f.matches("ehs"));
        assert!(f.matches("ehs/a"));
        assert!(f.matches("ehs/a/b/c"));
        assert!(!f.matches("other/a"));
        assert!(filter("#").matches("a/b"));
        assert!(filter("ehs/+/value/#").matches("ehs/h/value/power/w"));
    }

    #[test]
    fn dollar_topics_need_a_literal_first_level() {
        assert!(!filter("#").matches("$SYS/broker/uptime"));
        assert!(!filter("+/broker/uptime").matches("$SYS/broker/uptime"));
        assert!(filter("$SYS/#").matches("$SYS/broker/uptime"));
    }

    #[test]
    fn invalid_filters() {
        for (filter, problem) in [
            ("", "is empty"),
            ("a/#/b", "before the last level"),
            ("a/b#", "inside the level"),
            ("a/b+/c", "inside the level"),
            ("$share/g/a", "$share/"),
        ] {
            let Err(TopicError::InvalidFilter(message)) = TopicFilter::parse(filter) else {
                panic!("`{filter}` should be invalid");
            };
            assert!(message.contains(problem), "{message}");
        }
    }

    #[test]
    fn pattern_extracts_ids() {
        let p = TopicPattern::parse("ehs/{home}/{device}/telemetry").expect("pattern");
        let ids = p.extract("ehs/home-7/meter-3/telemetry").expect("match");
        assert_eq!(
            (ids.home, ids.device, ids.metric),
            ("home-7", "meter-3", "telemetry")
        );
        assert_eq!(p.extract("ehs/home-7/meter-3/status"), None);
        assert_eq!(p.extract("ehs/home-7/telemetry"), None);
        assert_eq!(p.extract("ehs/home-7/meter-3/telemetry/extra"), None);
        assert_eq!(
            p.extract("ehs//meter-3/telemetry"),
            None,
            "empty ids are unmapped"
        );
    }

    #[test]
    fn pattern_with_wildcard_and_metric() {
        let p = TopicPattern::parse("+/{device}/{home}/{metric}").expect("pattern");
        let ids = p.extract("site-a/dev/home/power_w").expect("match");
        assert_eq!(
            (ids.home, ids.device, ids.metric),
            ("home", "dev", "power_w")
        );
    }

    #[test]
    fn invalid_patterns() {
        for (pattern, problem) in [
            ("ehs/{home}/x", "lacks `{device}`"),
            ("ehs/{home}/{device}/#", "has the level `#`"),
            ("ehs/{home}/{device}/{site}", "has the level `{site}`"),
            ("{home}/{device}/{home}", "more than once"),
        ] {
            let Err(TopicError::InvalidPattern(message)) = TopicPattern::parse(pattern) else {
                panic!("`{pattern}` should be invalid");
            };
            assert!(message.contains(problem), "{message}");
        }
    }
}
