//! Host side of the `patterns` interface: one regex dialect for policies in every language,
//! each pattern compiled once per loaded policy.

use regex::{Regex, RegexBuilder};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Longest pattern a policy may ask for, in bytes.
const MAX_PATTERN_BYTES: usize = 4096;
/// Compiled-program size cap: keeps compilation (which the epoch deadline cannot
/// interrupt, as it runs in the host) fast.
const MAX_COMPILED_BYTES: usize = 1 << 20;
/// Distinct patterns cached per policy; past this, patterns are compiled per call.
const MAX_CACHED: usize = 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Anchoring {
    Whole,
    Anywhere,
}

type Compiled = Result<Arc<Regex>, String>;

/// Compiled patterns of one loaded policy, shared by all of its instances and threads.
#[derive(Default)]
pub(crate) struct PatternCache {
    // One map per anchoring, keyed by the pattern text, so that a lookup borrows the
    // guest's string instead of allocating a key on every call.
    whole: RwLock<HashMap<String, Compiled>>,
    anywhere: RwLock<HashMap<String, Compiled>>,
}

impl PatternCache {
    pub(crate) fn full_match(&self, pattern: &str, text: &str) -> Result<bool, String> {
        Ok(self.get(Anchoring::Whole, pattern)?.is_match(text))
    }

    pub(crate) fn find(&self, pattern: &str, text: &str) -> Result<bool, String> {
        Ok(self.get(Anchoring::Anywhere, pattern)?.is_match(text))
    }

    fn get(&self, anchoring: Anchoring, pattern: &str) -> Compiled {
        let map = match anchoring {
            Anchoring::Whole => &self.whole,
            Anchoring::Anywhere => &self.anywhere,
        };
        if let Some(hit) = map.read().unwrap_or_else(|e| e.into_inner()).get(pattern) {
            return hit.clone();
        }
        let compiled = compile(anchoring, pattern);
        let mut cache = map.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() < MAX_CACHED {
            cache.insert(pattern.to_string(), compiled.clone());
        }
        compiled
    }
}

fn compile(anchoring: Anchoring, pattern: &str) -> Compiled {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(format!(
            "pattern is {} bytes long; the limit is {MAX_PATTERN_BYTES}",
            pattern.len()
        ));
    }
    let source = match anchoring {
        Anchoring::Whole => format!("^(?:{pattern})$"),
        Anchoring::Anywhere => pattern.to_string(),
    };
    // Validate the pattern on its own first: wrapped, an error would point at the wrapper.
    RegexBuilder::new(pattern).size_limit(MAX_COMPILED_BYTES).build().map_err(describe)?;
    RegexBuilder::new(&source)
        .size_limit(MAX_COMPILED_BYTES)
        .build()
        .map(Arc::new)
        .map_err(describe)
}

fn describe(error: regex::Error) -> String {
    match error {
        regex::Error::Syntax(text) => {
            // The regex crate's message spans several lines with a caret diagram;
            // the last line says what is wrong.
            text.lines()
                .rev()
                .find(|line| !line.trim().is_empty())
                .unwrap_or("syntax error")
                .trim()
                .trim_start_matches("error: ")
                .to_string()
        }
        regex::Error::CompiledTooBig(limit) => {
            format!("the compiled pattern exceeds the {limit}-byte limit")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_match_is_anchored_and_find_is_not() {
        let cache = PatternCache::default();
        assert!(cache.full_match(r"\d+\.\d+", "1.2").unwrap());
        assert!(!cache.full_match(r"\d+\.\d+", "1.2.3").unwrap());
        assert!(cache.find(r"\d+\.\d+", "v1.2.3").unwrap());
        // Alternation must not escape the anchors.
        assert!(!cache.full_match("latest|stable", "latest-rc").unwrap());
    }

    #[test]
    fn invalid_patterns_say_why() {
        let cache = PatternCache::default();
        let err = cache.full_match("[a-", "a").unwrap_err();
        assert!(err.contains("unclosed character class"), "{err}");
        let err = cache.full_match("(?=x)", "x").unwrap_err();
        assert!(err.contains("look-around"), "{err}");
        let err = cache.full_match(&"a".repeat(5000), "a").unwrap_err();
        assert!(err.contains("4096"), "{err}");
        let err = cache.full_match(r"\w{1000}\w{1000}", "a").unwrap_err();
        assert!(err.contains("limit"), "{err}");
    }

    #[test]
    fn flags_work() {
        let cache = PatternCache::default();
        assert!(cache.full_match("(?i)latest", "LATEST").unwrap());
    }
}
