//! Host side of the `patterns` interface: one regex dialect for policies in every language,
//! each pattern compiled once per loaded policy.

use crate::query::QueryPattern;
use parking_lot::RwLock;
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use std::collections::HashMap;
use std::sync::Arc;

/// Longest pattern a policy may ask for, in bytes.
const MAX_PATTERN_BYTES: usize = 4096;
/// Compiled-program size cap: keeps compilation (which the epoch deadline cannot
/// interrupt, as it runs in the host) fast.
const MAX_COMPILED_BYTES: usize = 1 << 20;
/// Distinct patterns cached per policy; past this, patterns are compiled per call.
const MAX_CACHED: usize = 1024;
/// Distinct pattern sets a policy may prepare.
const MAX_SETS: usize = 256;

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
    sets: RwLock<Sets>,
    /// Patterns of `find-tags`, compiled and planned.
    queries: RwLock<HashMap<String, Result<Arc<QueryPattern>, String>>>,
}

/// Prepared pattern sets, each kept while something holds it (see [`HeldSets`]): a handle
/// indexes `slots`, and the handle of a released set is given to the next new one.
#[derive(Default)]
struct Sets {
    by_list: HashMap<Vec<String>, u32>,
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
}

struct Slot {
    set: RegexSet,
    /// The list it was prepared from, to forget it when released.
    list: Vec<String>,
    holders: usize,
}

impl PatternCache {
    pub(crate) fn full_match(&self, pattern: &str, text: &str) -> Result<bool, String> {
        Ok(self.get(Anchoring::Whole, pattern)?.is_match(text))
    }

    fn lookup_set(&self, patterns: &[String]) -> Option<u32> {
        self.sets.read().by_list.get(patterns).copied()
    }

    /// The handle of `patterns` compiled as one set of whole-text matches, with one more
    /// holder; the same list gets the same handle while it is held.
    fn acquire_set(&self, patterns: Vec<String>) -> Result<u32, String> {
        {
            let mut sets = self.sets.write();
            if let Some(&handle) = sets.by_list.get(&patterns) {
                sets.slot_mut(handle).holders += 1;
                return Ok(handle);
            }
        }
        // Each pattern on its own first, so that an error names the one at fault.
        for pattern in &patterns {
            self.get(Anchoring::Whole, pattern)
                .map_err(|why| format!("pattern `{pattern}`: {why}"))?;
        }
        let set = RegexSetBuilder::new(patterns.iter().map(|pattern| format!("^(?:{pattern})$")))
            .size_limit(MAX_COMPILED_BYTES)
            .build()
            .map_err(|error| {
                format!("the set of {} patterns: {}", patterns.len(), describe(error))
            })?;
        let mut sets = self.sets.write();
        if let Some(&handle) = sets.by_list.get(&patterns) {
            sets.slot_mut(handle).holders += 1; // prepared meanwhile by another instance
            return Ok(handle);
        }
        let slot = Slot { set, list: patterns.clone(), holders: 1 };
        let handle = match sets.free.pop() {
            Some(handle) => {
                sets.slots[handle as usize] = Some(slot);
                handle
            }
            None => {
                sets.slots.push(Some(slot));
                (sets.slots.len() - 1) as u32
            }
        };
        sets.by_list.insert(patterns, handle);
        Ok(handle)
    }

    fn hold_sets(&self, handles: &[u32]) {
        let mut sets = self.sets.write();
        for &handle in handles {
            sets.slot_mut(handle).holders += 1;
        }
    }

    fn release_sets(&self, handles: &[u32]) {
        let mut sets = self.sets.write();
        for &handle in handles {
            let slot = sets.slot_mut(handle);
            slot.holders -= 1;
            if slot.holders == 0 {
                let Some(slot) = sets.slots[handle as usize].take() else { continue };
                sets.by_list.remove(&slot.list);
                sets.free.push(handle);
            }
        }
    }

    /// Pattern sets compiled and held right now.
    #[cfg(test)]
    fn sets_in_use(&self) -> usize {
        self.sets.read().by_list.len()
    }

    /// The index of the first pattern of set `handle` that matches all of `text`.
    pub(crate) fn first_in_set(&self, handle: u32, text: &str) -> Result<Option<u32>, String> {
        let sets = self.sets.read();
        let set = sets
            .slots
            .get(handle as usize)
            .and_then(Option::as_ref)
            .ok_or_else(|| format!("no pattern set {handle} was prepared"))?;
        // Set indices come back in ascending order; they fit in u32, as the list did.
        Ok(set.set.matches(text).iter().next().map(|index| index as u32))
    }

    /// `pattern` compiled for whole matches and planned for index queries.
    pub(crate) fn query(&self, pattern: &str) -> Result<Arc<QueryPattern>, String> {
        if let Some(hit) = self.queries.read().get(pattern) {
            return hit.clone();
        }
        let planned = self
            .get(Anchoring::Whole, pattern)
            .map(|regex| Arc::new(QueryPattern::new(pattern, Regex::clone(&regex))));
        let mut cache = self.queries.write();
        if cache.len() < MAX_CACHED {
            cache.insert(pattern.to_string(), planned.clone());
        }
        planned
    }

    pub(crate) fn find(&self, pattern: &str, text: &str) -> Result<bool, String> {
        Ok(self.get(Anchoring::Anywhere, pattern)?.is_match(text))
    }

    fn get(&self, anchoring: Anchoring, pattern: &str) -> Compiled {
        let map = match anchoring {
            Anchoring::Whole => &self.whole,
            Anchoring::Anywhere => &self.anywhere,
        };
        if let Some(hit) = map.read().get(pattern) {
            return hit.clone();
        }
        let compiled = compile(anchoring, pattern);
        let mut cache = map.write();
        if cache.len() < MAX_CACHED {
            cache.insert(pattern.to_string(), compiled.clone());
        }
        compiled
    }
}

impl Sets {
    /// A held slot; holders only name handles they acquired, so it is there.
    fn slot_mut(&mut self, handle: u32) -> &mut Slot {
        self.slots[handle as usize].as_mut().expect("a held pattern set is prepared")
    }
}

/// The pattern sets one holder keeps compiled: a store (the sets its instance prepared) or
/// a configured policy (the sets its `configure` prepared, which instances started from its
/// snapshot use without preparing them). Dropping it releases them, so a policy's sets are
/// those of the configurations and instances alive, however many a gate has loaded and
/// dropped over its life.
pub(crate) struct HeldSets {
    cache: Arc<PatternCache>,
    handles: Vec<u32>,
}

impl HeldSets {
    pub(crate) fn new(cache: Arc<PatternCache>) -> Self {
        Self { cache, handles: Vec::new() }
    }

    pub(crate) fn cache(&self) -> &PatternCache {
        &self.cache
    }

    /// Prepare `patterns` for this holder; at most [`MAX_SETS`] distinct sets per holder, so
    /// that an instance preparing a new list on every call is stopped, not kept.
    pub(crate) fn prepare(&mut self, patterns: Vec<String>) -> Result<u32, String> {
        if let Some(handle) = self.cache.lookup_set(&patterns)
            && self.handles.contains(&handle)
        {
            return Ok(handle);
        }
        if self.handles.len() >= MAX_SETS {
            return Err(format!(
                "an instance may prepare at most {MAX_SETS} distinct pattern sets"
            ));
        }
        let handle = self.cache.acquire_set(patterns)?;
        self.handles.push(handle);
        Ok(handle)
    }

    /// Another holder of the same sets, for what outlives the store that prepared them.
    pub(crate) fn share(&self) -> Self {
        self.cache.hold_sets(&self.handles);
        Self { cache: self.cache.clone(), handles: self.handles.clone() }
    }

    /// Hold `other`'s sets too: its holds of sets this holder lacks are taken over, and
    /// its drop releases the rest.
    pub(crate) fn extend(&mut self, mut other: Self) {
        let (new, held): (Vec<u32>, Vec<u32>) =
            other.handles.drain(..).partition(|handle| !self.handles.contains(handle));
        other.handles = held;
        self.handles.extend(new);
    }
}

impl Drop for HeldSets {
    fn drop(&mut self) {
        self.cache.release_sets(&self.handles);
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

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn a_prepared_set_answers_the_first_whole_match() {
        let mut held = HeldSets::new(Arc::default());
        let set = held.prepare(list(&["latest", r"\d+\.\d+", r"\d+.*"])).unwrap();
        let cache = held.cache();
        assert_eq!(cache.first_in_set(set, "latest"), Ok(Some(0)));
        assert_eq!(cache.first_in_set(set, "1.2"), Ok(Some(1)));
        assert_eq!(cache.first_in_set(set, "1.2.3"), Ok(Some(2)));
        // Whole-text matches only, and alternation stays inside the anchors.
        assert_eq!(cache.first_in_set(set, "latest-rc"), Ok(None));
        let alternation = held.prepare(list(&["a|b"])).unwrap();
        let cache = held.cache();
        assert_eq!(cache.first_in_set(alternation, "ab"), Ok(None));
        assert_eq!(cache.first_in_set(alternation, "b"), Ok(Some(0)));
        // The same list is the same set; another list is another.
        assert_eq!(held.prepare(list(&["latest", r"\d+\.\d+", r"\d+.*"])), Ok(set));
        assert_ne!(alternation, set);
        let err = held.cache().first_in_set(99, "x").unwrap_err();
        assert_eq!(err, "no pattern set 99 was prepared");
    }

    #[test]
    fn a_set_with_an_invalid_pattern_names_it_and_one_holder_is_bounded() {
        let mut held = HeldSets::new(Arc::default());
        let err = held.prepare(vec!["ok".into(), "[a-".into()]).unwrap_err();
        assert!(err.starts_with("pattern `[a-`: ") && err.contains("unclosed"), "{err}");
        for n in 0..MAX_SETS {
            held.prepare(vec![format!("p{n}")]).unwrap();
        }
        // Lists it holds are still answered; a new one is not.
        assert!(held.prepare(vec!["p0".into()]).is_ok());
        let err = held.prepare(vec!["one-more".into()]).unwrap_err();
        assert!(err.contains("at most 256"), "{err}");
        // Another holder (another rule's configuration) is counted on its own.
        let mut other = HeldSets::new(held.cache.clone());
        assert!(other.prepare(vec!["one-more".into()]).is_ok());
    }

    #[test]
    fn sets_live_as_long_as_a_holder() {
        let cache = Arc::new(PatternCache::default());
        // A gate reloading one rule whose list changes every time: each configuration
        // releases its sets when dropped, so the thousandth reload prepares like the first.
        for n in 0..1000 {
            let mut held = HeldSets::new(cache.clone());
            held.prepare(vec![format!("release-{n}")]).unwrap();
            assert_eq!(cache.sets_in_use(), 1);
        }
        assert_eq!(cache.sets_in_use(), 0);
        // A set shared by a configuration outlives the store that prepared it.
        let mut store = HeldSets::new(cache.clone());
        let handle = store.prepare(list(&["latest"])).unwrap();
        let configuration = store.share();
        drop(store);
        assert_eq!(cache.first_in_set(handle, "latest"), Ok(Some(0)));
        drop(configuration);
        assert_eq!(cache.sets_in_use(), 0);
        assert!(cache.first_in_set(handle, "latest").is_err());
        // A released handle is given to the next list, which answers for itself.
        let mut next = HeldSets::new(cache.clone());
        assert_eq!(next.prepare(list(&["stable"])), Ok(handle));
        assert_eq!(cache.first_in_set(handle, "latest"), Ok(None));
    }

    #[test]
    fn flags_work() {
        let cache = PatternCache::default();
        assert!(cache.full_match("(?i)latest", "LATEST").unwrap());
    }
}
