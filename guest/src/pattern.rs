//! Regular expressions, compiled and matched by the host (RE2-style syntax of Rust's
//! `regex` crate), so that settings mean the same in a policy written in any language.

use crate::bindings::tagpolicy::policy::patterns;
use serde::{Deserialize, Deserializer};

/// A regular expression matched against the WHOLE text, validated when it is created.
/// In settings it is written as a string. The host matches it: these examples need one, so
/// they are compiled, not run.
///
/// ```no_run
/// use tagpolicy_guest::Pattern;
///
/// #[derive(serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Settings {
///     protected: Pattern,
/// }
///
/// // Read by the SDK from the operator's `{"protected": "v\\d+.*"}`:
/// let settings: Settings = serde_json::from_str(r#"{"protected": "v\\d+.*"}"#).unwrap();
/// assert!(settings.protected.matches("v1.3.1"));
/// assert!(!settings.protected.matches("latest"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

impl Pattern {
    /// Check `pattern` with the host. The error says why it is invalid.
    ///
    /// ```no_run
    /// use tagpolicy_guest::Pattern;
    ///
    /// let release = Pattern::new(r"v?\d+\.\d+\.\d+")?;
    /// assert!(Pattern::new("[a-").is_err());
    /// # Ok::<(), String>(())
    /// ```
    pub fn new(pattern: impl Into<String>) -> Result<Self, String> {
        let pattern = pattern.into();
        match patterns::full_match(&pattern, "") {
            Ok(_) => Ok(Self(pattern)),
            Err(why) => Err(format!("`{pattern}` is not a valid regex: {why}")),
        }
    }

    /// Whether the pattern matches all of `text`.
    ///
    /// ```no_run
    /// use tagpolicy_guest::Pattern;
    ///
    /// let release = Pattern::new(r"\d+\.\d+\.\d+").unwrap();
    /// assert!(release.matches("1.3.1"));
    /// assert!(!release.matches("1.3.1-rc1"));
    /// ```
    pub fn matches(&self, text: &str) -> bool {
        match patterns::full_match(&self.0, text) {
            Ok(matched) => matched,
            // Validated in `new`; if the host refuses it now, stop (the host then denies)
            // rather than guess an answer.
            Err(why) => panic!("pattern `{}` stopped working: {why}", self.0),
        }
    }

    /// The pattern as written, for messages.
    ///
    /// ```no_run
    /// use tagpolicy_guest::Pattern;
    ///
    /// let protected = Pattern::new("latest|stable").unwrap();
    /// assert_eq!(format!("tags matching `{}` are protected", protected.as_str()), "tags matching `latest|stable` are protected");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Pattern::new(text).map_err(serde::de::Error::custom)
    }
}

/// A list of patterns; in settings, a list of strings. The host compiles the list once, as
/// a set, when the settings are read; matching a text is then one host call for the list.
///
/// ```no_run
/// use tagpolicy_guest::Patterns;
///
/// #[derive(serde::Deserialize)]
/// struct Settings {
///     #[serde(default)]
///     mutable: Patterns,
/// }
///
/// let settings: Settings = serde_json::from_str(r#"{"mutable": ["latest", "pr-\\d+"]}"#).unwrap();
/// assert!(settings.mutable.any_match("pr-17"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patterns {
    patterns: Vec<Pattern>,
    /// The host's handle of the prepared set; `None` for an empty list.
    set: Option<u32>,
}

impl Patterns {
    /// Check `patterns` and prepare them as a set with the host. The error names the
    /// invalid pattern.
    ///
    /// ```no_run
    /// use tagpolicy_guest::{Pattern, Patterns};
    ///
    /// let mutable = Patterns::new(vec![Pattern::new("latest")?, Pattern::new(r"pr-\d+")?])?;
    /// assert!(mutable.any_match("latest"));
    /// # Ok::<(), String>(())
    /// ```
    pub fn new(patterns: Vec<Pattern>) -> Result<Self, String> {
        if patterns.is_empty() {
            return Ok(Self::default());
        }
        let texts: Vec<String> = patterns.iter().map(|pattern| pattern.0.clone()).collect();
        let set = patterns::prepare_set(&texts)?;
        Ok(Self { patterns, set: Some(set) })
    }

    /// The first pattern that matches all of `text`.
    ///
    /// ```no_run
    /// use tagpolicy_guest::{Pattern, Patterns};
    ///
    /// let mutable = Patterns::new(vec![Pattern::new("latest")?, Pattern::new(r"pr-\d+")?])?;
    /// assert_eq!(mutable.first_match("pr-17").map(Pattern::as_str), Some(r"pr-\d+"));
    /// assert_eq!(mutable.first_match("1.3.1"), None);
    /// # Ok::<(), String>(())
    /// ```
    pub fn first_match(&self, text: &str) -> Option<&Pattern> {
        let set = self.set?;
        match patterns::first_in_set(set, text) {
            Ok(index) => self.patterns.get(index? as usize),
            // Prepared when the settings were read; see `Pattern::matches`.
            Err(why) => panic!("pattern set stopped working: {why}"),
        }
    }

    /// Whether any pattern matches all of `text`.
    ///
    /// ```no_run
    /// use tagpolicy_guest::{Pattern, Patterns};
    ///
    /// let mutable = Patterns::new(vec![Pattern::new("latest")?, Pattern::new(r"pr-\d+")?])?;
    /// assert!(!mutable.any_match("1.3.1"));
    /// # Ok::<(), String>(())
    /// ```
    pub fn any_match(&self, text: &str) -> bool {
        self.first_match(text).is_some()
    }

    /// The patterns, in order.
    ///
    /// ```no_run
    /// use tagpolicy_guest::{Pattern, Patterns};
    ///
    /// let mutable = Patterns::new(vec![Pattern::new("latest")?, Pattern::new(r"pr-\d+")?])?;
    /// let listed: Vec<&str> = mutable.iter().map(Pattern::as_str).collect();
    /// assert_eq!(listed, ["latest", r"pr-\d+"]);
    /// # Ok::<(), String>(())
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = &Pattern> {
        self.patterns.iter()
    }

    /// Whether the list has no pattern (then nothing matches).
    ///
    /// ```
    /// use tagpolicy_guest::Patterns;
    ///
    /// assert!(Patterns::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

impl<'de> Deserialize<'de> for Patterns {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Patterns::new(Vec::<Pattern>::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}
