//! Regular expressions, compiled and matched by the host (RE2-style syntax of Rust's
//! `regex` crate), so that settings mean the same in a policy written in any language.

use crate::bindings::tagpolicy::policy::patterns;
use serde::{Deserialize, Deserializer};

/// A regular expression matched against the WHOLE text, validated when it is created.
/// In settings it is written as a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

impl Pattern {
    /// Check `pattern` with the host. The error says why it is invalid.
    pub fn new(pattern: impl Into<String>) -> Result<Self, String> {
        let pattern = pattern.into();
        match patterns::full_match(&pattern, "") {
            Ok(_) => Ok(Self(pattern)),
            Err(why) => Err(format!("`{pattern}` is not a valid regex: {why}")),
        }
    }

    /// Whether the pattern matches all of `text`.
    pub fn matches(&self, text: &str) -> bool {
        match patterns::full_match(&self.0, text) {
            Ok(matched) => matched,
            // Validated in `new`; if the host refuses it now, stop (the host then denies)
            // rather than guess an answer.
            Err(why) => panic!("pattern `{}` stopped working: {why}", self.0),
        }
    }

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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patterns {
    patterns: Vec<Pattern>,
    /// The host's handle of the prepared set; `None` for an empty list.
    set: Option<u32>,
}

impl Patterns {
    /// Check `patterns` and prepare them as a set with the host. The error names the
    /// invalid pattern.
    pub fn new(patterns: Vec<Pattern>) -> Result<Self, String> {
        if patterns.is_empty() {
            return Ok(Self::default());
        }
        let texts: Vec<String> = patterns.iter().map(|pattern| pattern.0.clone()).collect();
        let set = patterns::prepare_set(&texts)?;
        Ok(Self { patterns, set: Some(set) })
    }

    /// The first pattern that matches all of `text`.
    pub fn first_match(&self, text: &str) -> Option<&Pattern> {
        let set = self.set?;
        match patterns::first_in_set(set, text) {
            Ok(index) => self.patterns.get(index? as usize),
            // Prepared when the settings were read; see `Pattern::matches`.
            Err(why) => panic!("pattern set stopped working: {why}"),
        }
    }

    pub fn any_match(&self, text: &str) -> bool {
        self.first_match(text).is_some()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Pattern> {
        self.patterns.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

impl<'de> Deserialize<'de> for Patterns {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Patterns::new(Vec::<Pattern>::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}
