//! Values that must never reach a log line, an error message or a `Debug` dump.
//!
//! A password is held as a [`Secret`] from the moment it is read until it is handed to the
//! client library that sends it, so formatting any structure that contains it (the
//! configuration, an error, a tracing field) prints `[redacted]` instead of the value.

use std::fmt;

/// What every secret prints as.
pub const REDACTED: &str = "[redacted]";

/// A secret string: `Debug` and `Display` print [`REDACTED`]; only [`Secret::expose`] gives the
/// value, and only the code that sends it to a broker calls it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the client library that sends it; never for formatting.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// `url` with its userinfo (`user:password@`) replaced by [`REDACTED`], for messages about a URL
/// someone may have written credentials into. Everything after the authority is dropped too: a
/// query string can carry a token as well, and the scheme and host are what the reader needs.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    // The last `@` ends the userinfo even when the password holds `/`, `?` or `@` unescaped;
    // an `@` further right (in a query) only costs the host, never a secret.
    let (userinfo, after) = match rest.rsplit_once('@') {
        Some((_, after)) => (true, after),
        None => (false, rest),
    };
    let host_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (host, tail) = after.split_at(host_end);
    let host = if userinfo {
        format!("{REDACTED}@{host}")
    } else {
        host.to_owned()
    };
    let tail = if tail.is_empty() || tail == "/" {
        tail
    } else {
        "/…"
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{host}{tail}"),
        None => format!("{host}{tail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENTINEL: &str = "sentinel-Pa55word";

    #[test]
    fn secret_formats_as_redacted() {
        let secret = Secret::new(SENTINEL);
        assert_eq!(format!("{secret}"), REDACTED);
        assert_eq!(format!("{secret:?}"), REDACTED);
        assert_eq!(
            format!("{:#?}", Some(&secret)),
            format!("Some(\n    {REDACTED},\n)")
        );
        assert_eq!(secret.expose(), SENTINEL);
    }

    #[test]
    fn urls_lose_their_userinfo_and_anything_after_the_host() {
        for (url, shown) in [
            (
                "mqtt://bridge:sentinel-Pa55word@broker:1883",
                "mqtt://[redacted]@broker:1883",
            ),
            // A password containing `@` still leaves nothing of itself behind.
            (
                "mqtt://u:a@sentinel-Pa55word@broker",
                "mqtt://[redacted]@broker",
            ),
            ("mqtt://broker:1883/", "mqtt://broker:1883/"),
            (
                "mqtt://broker:1883/x?token=sentinel-Pa55word",
                "mqtt://broker:1883/…",
            ),
            (
                "mqtt://u:sentinel/Pa55word@broker:1883",
                "mqtt://[redacted]@broker:1883",
            ),
            ("broker:1883", "broker:1883"),
            ("u:sentinel-Pa55word@broker", "[redacted]@broker"),
        ] {
            let redacted = redact_url(url);
            assert_eq!(redacted, shown, "{url}");
            assert!(!redacted.contains("Pa55word"), "{url}");
        }
    }
}
