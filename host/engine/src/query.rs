//! Queries on a repository's tags whose cost does not grow with the repository: which tags
//! match a pattern, by name or newest version first, a page at a time (`find-tags`).
//!
//! An index keeps two sorted lists of a repository's tags. The *name index* is the tags
//! themselves, byte-ordered: a pattern's literal prefix (`1\.2\..*` starts with `1.2.`) is a
//! range of it. The *version index* holds a [`version_key`] per tag: its *shape* (the tag with
//! every run of digits written `#`: `1.2.10` is `#.#.#`), then its numbers, each written so
//! that byte order is numeric order, then the tag. Tags of one shape are a range of it, in
//! version order; a pattern's shapes (`v?1\.2\.\d+` has `#.#.#` and `v#.#.#`, both with the
//! numbers `1, 2` first) are a few such ranges, read from the top. The host reads only those
//! ranges and checks each entry against the whole pattern, so a query reads the tags that
//! could match and stops at its limit. Both lists are plain sorted strings, so the same plan
//! runs on an in-memory index ([`TagMap`](crate::TagMap)) and on a Redis sorted set
//! (`ZRANGEBYLEX`).

use regex::Regex;
use regex_syntax::hir::{Class, Hir, HirKind};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

pub use crate::bindings::tagpolicy::policy::types::TagOrder;

/// Most entries one `find-tags` call answers, whatever limit the policy asks for.
pub const MAX_PAGE: u32 = 1000;
/// Paths a pattern may expand into (alternations, optional parts) before the host stops
/// planning and reads every tag instead.
const MAX_PATHS: usize = 32;
/// Characters of a class the planner expands into alternatives (`[vV]`); larger classes
/// are "anything" to the planner.
const MAX_CLASS_CHARS: usize = 8;
/// Entries read from an index range at a time.
const BATCH: usize = 128;

/// A pattern compiled for queries: the whole-match expression and where in an index the tags
/// it can match are.
#[derive(Debug)]
pub(crate) struct QueryPattern {
    regex: Regex,
    /// Disjoint prefixes of the name index that hold every tag the pattern can match.
    name_prefixes: Vec<String>,
    /// Disjoint prefixes of the version index, each within one shape, that hold every tag the
    /// pattern can match; `None` when some match has a shape the planner cannot tell.
    version_prefixes: Option<Vec<String>>,
}

impl QueryPattern {
    /// Plan `pattern` (already known to compile) whose whole-match expression is `regex`.
    pub(crate) fn new(pattern: &str, regex: Regex) -> Self {
        let paths = regex_syntax::ParserBuilder::new()
            .build()
            .parse(pattern)
            .ok()
            .and_then(|hir| expand(&hir));
        let Some(paths) = paths else {
            return QueryPattern {
                regex,
                name_prefixes: vec![String::new()],
                version_prefixes: None,
            };
        };
        let shapes: Vec<Shape> = paths.iter().map(|path| Shape::of(path)).collect();
        let name_prefixes = disjoint(shapes.iter().map(|shape| shape.literal.clone()).collect());
        let version_prefixes =
            shapes.iter().map(Shape::version_prefix).collect::<Option<Vec<String>>>().map(disjoint);
        QueryPattern { regex, name_prefixes, version_prefixes }
    }

    /// Whether the whole of `tag` matches.
    pub fn is_match(&self, tag: &str) -> bool {
        self.regex.is_match(tag)
    }
}

/// One `find-tags` call: a planned pattern, the order, the page size and where to continue.
#[derive(Debug, Clone)]
pub struct TagQuery {
    pattern: Arc<QueryPattern>,
    /// By name, or newest version first.
    pub order: TagOrder,
    /// At most [`MAX_PAGE`].
    pub limit: usize,
    /// Continue after this tag (the last of the previous page).
    pub after: Option<String>,
}

/// Read access to an index's two sorted lists, as [`TagQuery::run`] needs it.
///
/// Each call answers `count` entries, or fewer only when the range has no more. It may answer
/// more (an index across a network reads a few more to save round trips): the query uses them.
pub trait SortedTags {
    /// `count` tags starting with `prefix`, after `after` if given, ascending.
    fn names(&self, prefix: &str, after: Option<&str>, count: usize) -> Vec<String>;
    /// `count` version keys starting with `prefix`, below `below` if given, descending.
    fn versions(&self, prefix: &str, below: Option<&str>, count: usize) -> Vec<String>;
}

impl TagQuery {
    /// A query of `pattern` planned by the caller (the engine caches plans per policy).
    pub(crate) fn planned(
        pattern: Arc<QueryPattern>,
        order: TagOrder,
        limit: u32,
        after: Option<String>,
    ) -> Self {
        TagQuery { pattern, order, limit: limit.min(MAX_PAGE) as usize, after }
    }

    /// Compile and plan `pattern`; for hosts and tests that build queries themselves.
    pub fn new(
        pattern: &str,
        order: TagOrder,
        limit: u32,
        after: Option<String>,
    ) -> Result<Self, String> {
        let regex = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| e.to_string())?;
        Ok(Self::planned(Arc::new(QueryPattern::new(pattern, regex)), order, limit, after))
    }

    /// Whether the whole of `tag` matches the query's pattern.
    pub fn matches(&self, tag: &str) -> bool {
        self.pattern.is_match(tag)
    }

    /// Whether the planner could not narrow the query and it reads every tag.
    pub fn reads_everything(&self) -> bool {
        match self.order {
            TagOrder::Name => self.pattern.name_prefixes.iter().any(String::is_empty),
            TagOrder::NewestFirst => self.pattern.version_prefixes.is_none(),
        }
    }

    /// The matching tags, in order, at most `limit`, read from `index`.
    pub fn run(&self, index: &impl SortedTags) -> Vec<String> {
        match (self.order, &self.pattern.version_prefixes) {
            (TagOrder::Name, _) => self.by_name(index),
            (TagOrder::NewestFirst, Some(prefixes)) => self.newest_first(index, prefixes),
            (TagOrder::NewestFirst, None) => self.newest_first_everywhere(index),
        }
    }

    /// Each name range in turn: the ranges are disjoint and sorted, so their concatenation is
    /// in name order.
    fn by_name(&self, index: &impl SortedTags) -> Vec<String> {
        let mut prefixes = self.pattern.name_prefixes.clone();
        prefixes.sort();
        let mut found = Vec::new();
        for prefix in &prefixes {
            // Past a cursor beyond this range nothing of it is wanted.
            if let Some(after) = &self.after
                && after.as_str() > prefix.as_str()
                && !after.starts_with(prefix.as_str())
            {
                continue;
            }
            let mut cursor = self.after.clone().filter(|after| after.as_str() >= prefix.as_str());
            let mut batch = first_batch(self.limit - found.len());
            loop {
                let page = index.names(prefix, cursor.as_deref(), batch);
                let last = page.len() < batch;
                batch = (batch * 2).min(BATCH);
                for tag in &page {
                    if self.matches(tag) {
                        found.push(tag.clone());
                        if found.len() == self.limit {
                            return found;
                        }
                    }
                }
                match page.last() {
                    Some(tag) if !last => cursor = Some(tag.clone()),
                    _ => break,
                }
            }
        }
        found
    }

    /// Merge the version ranges from the top: each range is in version order, and across
    /// ranges (other shapes) the order is that of the numbers-and-name part of the keys.
    fn newest_first(&self, index: &impl SortedTags, prefixes: &[String]) -> Vec<String> {
        let below = self.after.as_deref().map(|after| order_part(&version_key(after)).to_string());
        let mut ranges: Vec<Range> = prefixes
            .iter()
            .map(|prefix| {
                // Within one shape, a key orders as its order part does.
                let shape = &prefix[..prefix.find(' ').unwrap_or(prefix.len())];
                let below = below.as_ref().map(|below| format!("{shape} {below}"));
                let batch = first_batch(self.limit);
                Range { prefix: prefix.clone(), below, page: Vec::new(), batch, done: false }
            })
            .collect();
        let mut found = Vec::new();
        while found.len() < self.limit {
            let mut best: Option<(usize, String)> = None;
            for (index_of, range) in ranges.iter_mut().enumerate() {
                let Some(key) = range.peek(index) else { continue };
                if best.as_ref().is_none_or(|(_, top)| order_part(key) > order_part(top)) {
                    best = Some((index_of, key.to_string()));
                }
            }
            let Some((from, key)) = best else { break };
            ranges[from].pop();
            let tag = key_tag(&key);
            if self.matches(tag) {
                found.push(tag.to_string());
            }
        }
        found
    }

    /// No plan: read every tag and keep the newest `limit` below the cursor.
    fn newest_first_everywhere(&self, index: &impl SortedTags) -> Vec<String> {
        let below = self.after.as_deref().map(|after| order_part(&version_key(after)).to_string());
        let mut top: BinaryHeap<Reverse<String>> = BinaryHeap::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = index.names("", cursor.as_deref(), BATCH);
            for tag in &page {
                if !self.matches(tag) {
                    continue;
                }
                let key = version_key(tag);
                let part = order_part(&key);
                if below.as_deref().is_some_and(|below| part >= below) {
                    continue;
                }
                top.push(Reverse(part.to_string()));
                if top.len() > self.limit {
                    top.pop();
                }
            }
            match page.last() {
                Some(tag) if page.len() == BATCH => cursor = Some(tag.clone()),
                _ => break,
            }
        }
        let mut newest: Vec<String> = top.into_iter().map(|Reverse(part)| part).collect();
        newest.sort_unstable_by(|a, b| b.cmp(a));
        newest.iter().map(|part| key_tag(part).to_string()).collect()
    }
}

/// The size of the first batch read for a query that wants `wanted` more entries: no more
/// than it can use if every entry matches, so that a query for the newest tag of a range
/// of a million reads one key rather than [`BATCH`]; later batches double.
fn first_batch(wanted: usize) -> usize {
    wanted.clamp(1, BATCH)
}

/// A version range being read from the top, a batch at a time.
struct Range {
    prefix: String,
    /// Read keys below this one next.
    below: Option<String>,
    /// The batch being consumed, in reverse (its next key last).
    page: Vec<String>,
    /// How many keys the next batch reads.
    batch: usize,
    done: bool,
}

impl Range {
    fn peek(&mut self, index: &impl SortedTags) -> Option<&str> {
        if self.page.is_empty() && !self.done {
            let mut page = index.versions(&self.prefix, self.below.as_deref(), self.batch);
            self.done = page.len() < self.batch;
            self.batch = (self.batch * 2).min(BATCH);
            if let Some(last) = page.last() {
                self.below = Some(last.clone());
            }
            page.reverse();
            self.page = page;
        }
        self.page.last().map(String::as_str)
    }

    fn pop(&mut self) {
        self.page.pop();
    }
}

/// The version-index key of `tag`: its shape, a space, its numbers (each as three digits of
/// length and the digits without leading zeros, so that byte order is numeric order), a
/// space, the tag. `1.2.10` is `#.#.# 0011001200210 1.2.10`. Tags have no spaces, and a space
/// sorts before every character of a shape, so a shorter shape sorts before its extensions.
pub fn version_key(tag: &str) -> String {
    let mut shape = String::with_capacity(tag.len());
    let mut numbers = String::with_capacity(tag.len() + 8);
    let mut rest = tag;
    while let Some(c) = rest.chars().next() {
        if c.is_ascii_digit() {
            let run = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            shape.push('#');
            push_number(&mut numbers, &rest[..run]);
            rest = &rest[run..];
        } else {
            shape.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    format!("{shape} {numbers} {tag}")
}

/// The part of a version key that orders tags across shapes: the numbers, then the tag.
fn order_part(key: &str) -> &str {
    key.split_once(' ').map_or(key, |(_, part)| part)
}

/// The tag a version key (or its order part) ends with.
pub(crate) fn key_tag(key: &str) -> &str {
    key.rsplit_once(' ').map_or(key, |(_, tag)| tag)
}

fn push_number(out: &mut String, digits: &str) {
    let significant = digits.trim_start_matches('0');
    out.push_str(&format!("{:03}", significant.len()));
    out.push_str(significant);
}

/// Sorted prefixes with every prefix that another one covers removed.
fn disjoint(mut prefixes: Vec<String>) -> Vec<String> {
    prefixes.sort();
    prefixes.dedup();
    let mut kept: Vec<String> = Vec::with_capacity(prefixes.len());
    for prefix in prefixes {
        if !kept.last().is_some_and(|last| prefix.starts_with(last.as_str())) {
            kept.push(prefix);
        }
    }
    kept
}

/// What a pattern matches, one piece at a time, as far as the planner can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// This character.
    Char(char),
    /// Some digits (one or more).
    Digits,
    /// Anything from here on.
    Open,
}

type Path = Vec<Piece>;

/// Every path `hir` can match, each ending at the end of the tag unless it ends with
/// [`Piece::Open`]; `None` when there would be more than [`MAX_PATHS`]. Wider than the
/// pattern (a repetition of letters becomes "anything"), never narrower.
fn expand(hir: &Hir) -> Option<Vec<Path>> {
    let paths = match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => vec![Vec::new()],
        HirKind::Literal(literal) => {
            vec![String::from_utf8_lossy(&literal.0).chars().map(Piece::Char).collect()]
        }
        HirKind::Class(class) => class_paths(class),
        HirKind::Capture(capture) => expand(&capture.sub)?,
        HirKind::Repetition(repetition) => {
            let sub = expand(&repetition.sub)?;
            let digits_only = sub.iter().all(|path| {
                !path.is_empty()
                    && path
                        .iter()
                        .all(|piece| matches!(piece, Piece::Digits | Piece::Char('0'..='9')))
            });
            let once = if digits_only {
                vec![vec![Piece::Digits]]
            } else if repetition.max == Some(1) {
                sub
            } else {
                sub.into_iter()
                    .map(|mut path| {
                        path.push(Piece::Open);
                        path
                    })
                    .collect()
            };
            if repetition.min == 0 {
                let mut paths = vec![Vec::new()];
                paths.extend(once);
                paths
            } else {
                once
            }
        }
        HirKind::Concat(subs) => {
            let mut paths: Vec<Path> = vec![Vec::new()];
            for sub in subs {
                let next = expand(sub)?;
                let mut joined = Vec::new();
                for path in &paths {
                    if path.last() == Some(&Piece::Open) {
                        add(&mut joined, path.clone());
                        continue;
                    }
                    for tail in &next {
                        let mut path = path.clone();
                        join(&mut path, tail);
                        add(&mut joined, path);
                    }
                }
                if joined.len() > MAX_PATHS {
                    return None;
                }
                paths = joined;
            }
            paths
        }
        HirKind::Alternation(subs) => {
            let mut paths = Vec::new();
            for sub in subs {
                for path in expand(sub)? {
                    add(&mut paths, path);
                }
            }
            paths
        }
    };
    (paths.len() <= MAX_PATHS).then_some(paths)
}

/// `path` followed by `tail`. Digits followed by digits are one run of digits: wider, as the
/// planner may be ("one or more digits" covers "two or more"), and it keeps a pattern's
/// numbers from multiplying its paths (`0|[1-9][0-9]*` is two paths, not three).
fn join(path: &mut Path, tail: &[Piece]) {
    let tail = match (path.last(), tail.first()) {
        (Some(Piece::Digits), Some(Piece::Digits)) => &tail[1..],
        _ => tail,
    };
    path.extend(tail.iter().cloned());
}

/// Add `path` to `paths` unless it is there already: equal paths plan the same ranges.
fn add(paths: &mut Vec<Path>, path: Path) {
    if !paths.contains(&path) {
        paths.push(path);
    }
}

/// A class, seen through the characters a tag may hold (`[A-Za-z0-9._-]`).
fn class_paths(class: &Class) -> Vec<Path> {
    let in_tags = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let mut chars: Vec<char> = Vec::new();
    let mut add = |start: u32, end: u32| {
        for code in start..=end.min(127) {
            if let Some(c) = char::from_u32(code).filter(|c| in_tags(*c)) {
                chars.push(c);
            }
        }
    };
    match class {
        Class::Unicode(class) => {
            for range in class.ranges() {
                add(range.start() as u32, range.end() as u32);
            }
        }
        Class::Bytes(class) => {
            for range in class.ranges() {
                add(u32::from(range.start()), u32::from(range.end()));
            }
        }
    }
    if !chars.is_empty() && chars.iter().all(char::is_ascii_digit) {
        return vec![vec![Piece::Digits]];
    }
    if chars.len() <= MAX_CLASS_CHARS {
        return chars.into_iter().map(|c| vec![Piece::Char(c)]).collect();
    }
    vec![vec![Piece::Open]]
}

/// A path read as tags read: literal text, runs of digits, and whether it ends there.
struct Shape {
    /// The literal text every match starts with.
    literal: String,
    /// The shape so far (`#` per run of digits).
    shape: String,
    /// Each run's number when the pattern spells it out whole, else `None`.
    numbers: Vec<Option<String>>,
    /// Whether the path ends there (no "anything" after it).
    complete: bool,
}

impl Shape {
    fn of(path: &[Piece]) -> Shape {
        let mut literal = String::new();
        let mut literal_open = true;
        let mut shape = String::new();
        let mut numbers = Vec::new();
        // The run of digits being read: its digits if all spelled out.
        let mut run: Option<Option<String>> = None;
        let mut complete = true;
        for piece in path {
            match piece {
                Piece::Char(c) if c.is_ascii_digit() => {
                    if literal_open {
                        literal.push(*c);
                    }
                    match &mut run {
                        Some(Some(digits)) => digits.push(*c),
                        Some(None) => {}
                        None => run = Some(Some(c.to_string())),
                    }
                }
                Piece::Digits => {
                    literal_open = false;
                    run = Some(None);
                }
                Piece::Char(c) => {
                    if literal_open {
                        literal.push(*c);
                    }
                    if let Some(number) = run.take() {
                        shape.push('#');
                        numbers.push(number);
                    }
                    shape.push(*c);
                }
                Piece::Open => {
                    // A run may go on into what follows: its number is not known.
                    if run.take().is_some() {
                        shape.push('#');
                        numbers.push(None);
                    }
                    complete = false;
                    break;
                }
            }
        }
        if let Some(number) = run.take() {
            shape.push('#');
            numbers.push(number);
        }
        Shape { literal, shape, numbers, complete }
    }

    /// The version-index prefix holding this path's matches: its shape and its leading
    /// spelled-out numbers; `None` when the shape is not complete.
    fn version_prefix(&self) -> Option<String> {
        if !self.complete {
            return None;
        }
        let mut prefix = format!("{} ", self.shape);
        for number in self.numbers.iter().map_while(Option::as_ref) {
            push_number(&mut prefix, number);
        }
        Some(prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(pattern: &str) -> QueryPattern {
        let regex = Regex::new(&format!("^(?:{pattern})$")).unwrap();
        QueryPattern::new(pattern, regex)
    }

    #[test]
    fn version_keys_order_numbers_numerically() {
        let mut tags = ["1.2.10", "1.2.9", "1.10.0", "2", "1.2", "1.2.9-rc1", "01.2.9"];
        tags.sort_by_key(|tag| order_part(&version_key(tag)).to_string());
        assert_eq!(tags, ["1.2", "01.2.9", "1.2.9", "1.2.9-rc1", "1.2.10", "1.10.0", "2"]);
        assert_eq!(version_key("1.2.10"), "#.#.# 0011001200210 1.2.10");
        assert_eq!(version_key("latest"), "latest  latest");
        assert_eq!(version_key("v0"), "v# 000 v0");
    }

    #[test]
    fn literal_prefixes_narrow_name_queries() {
        assert_eq!(plan(r"1\.2\..*").name_prefixes, ["1.2."]);
        assert_eq!(plan(r"v?1\.2\.\d+").name_prefixes, ["1.2.", "v1.2."]);
        assert_eq!(plan(r"latest|stable").name_prefixes, ["latest", "stable"]);
        assert_eq!(plan(r"(?i)v1").name_prefixes, ["V1", "v1"]);
        assert_eq!(plan(r"ci-\d+|ci-.*").name_prefixes, ["ci-"]);
        assert_eq!(plan(r".*-rc\d+").name_prefixes, [""]);
        assert_eq!(plan(r"[a-z]+-\d+").name_prefixes, [""]);
    }

    #[test]
    fn shapes_narrow_newest_first_queries() {
        assert_eq!(
            plan(r"v?1\.2\.\d+").version_prefixes.unwrap(),
            ["#.#.# 00110012", "v#.#.# 00110012"]
        );
        assert_eq!(plan(r"\d+\.\d+\.\d+").version_prefixes.unwrap(), ["#.#.# "]);
        let canonical = r"(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)";
        assert_eq!(plan(canonical).version_prefixes.unwrap(), ["#.#.# "]);
        // Every release, with or without a `v` (the guest SDK's `release_pattern(None)`):
        // planned, not read whole.
        let release = r"v?(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)";
        assert_eq!(plan(release).version_prefixes.unwrap(), ["#.#.# ", "v#.#.# "]);
        assert_eq!(plan(release).name_prefixes, [""]);
        assert_eq!(plan(r"1\.\d+\.\d+").version_prefixes.unwrap(), ["#.#.# 0011"]);
        // A number the pattern does not spell out whole stops the narrowing.
        assert_eq!(plan(r"1\d\.2\.\d+").version_prefixes.unwrap(), ["#.#.# "]);
        assert_eq!(plan(r"build-\d+").version_prefixes.unwrap(), ["build-# "]);
        assert!(plan(r"1\.2\..*").version_prefixes.is_none());
        assert!(plan(r"[a-z]+-\d+").version_prefixes.is_none());
    }

    /// An index over a sorted list of tags, as the real ones are.
    struct Sorted {
        names: Vec<String>,
        versions: Vec<String>,
    }

    impl Sorted {
        fn of(tags: &[&str]) -> Sorted {
            let mut names: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
            names.sort();
            let mut versions: Vec<String> = tags.iter().map(|t| version_key(t)).collect();
            versions.sort();
            Sorted { names, versions }
        }
    }

    impl SortedTags for Sorted {
        fn names(&self, prefix: &str, after: Option<&str>, count: usize) -> Vec<String> {
            self.names
                .iter()
                .filter(|t| t.starts_with(prefix) && after.is_none_or(|a| t.as_str() > a))
                .take(count)
                .cloned()
                .collect()
        }
        fn versions(&self, prefix: &str, below: Option<&str>, count: usize) -> Vec<String> {
            self.versions
                .iter()
                .rev()
                .filter(|k| k.starts_with(prefix) && below.is_none_or(|b| k.as_str() < b))
                .take(count)
                .cloned()
                .collect()
        }
    }

    fn run(
        index: &Sorted,
        pattern: &str,
        order: TagOrder,
        limit: u32,
        after: Option<&str>,
    ) -> Vec<String> {
        TagQuery::new(pattern, order, limit, after.map(String::from)).unwrap().run(index)
    }

    #[test]
    fn newest_first_merges_shapes_and_pages() {
        let index = Sorted::of(&[
            "1.2.9",
            "v1.2.10",
            "1.2.11-rc1",
            "1.2.1",
            "1.3.0",
            "20261204",
            "latest",
            "1.2",
        ]);
        let pattern = r"v?1\.2\.\d+";
        assert_eq!(
            run(&index, pattern, TagOrder::NewestFirst, 10, None),
            ["v1.2.10", "1.2.9", "1.2.1"]
        );
        assert_eq!(run(&index, pattern, TagOrder::NewestFirst, 1, None), ["v1.2.10"]);
        assert_eq!(
            run(&index, pattern, TagOrder::NewestFirst, 2, Some("v1.2.10")),
            ["1.2.9", "1.2.1"]
        );
        // Without a plan, the same answer from reading everything.
        let everything = r"(?:v1|1)\.2\.\d+|.*-never";
        assert_eq!(
            run(&index, everything, TagOrder::NewestFirst, 10, None),
            ["v1.2.10", "1.2.9", "1.2.1"]
        );
        assert_eq!(run(&index, everything, TagOrder::NewestFirst, 1, Some("v1.2.10")), ["1.2.9"]);
    }

    #[test]
    fn by_name_pages_across_prefixes() {
        let index = Sorted::of(&["a1", "a2", "b1", "b2", "c1"]);
        let pattern = "a.*|b.*";
        assert_eq!(run(&index, pattern, TagOrder::Name, 10, None), ["a1", "a2", "b1", "b2"]);
        assert_eq!(run(&index, pattern, TagOrder::Name, 3, None), ["a1", "a2", "b1"]);
        assert_eq!(run(&index, pattern, TagOrder::Name, 3, Some("a2")), ["b1", "b2"]);
        assert_eq!(run(&index, pattern, TagOrder::Name, 3, Some("b9")), Vec::<String>::new());
    }

    /// An index that counts the keys it hands out.
    struct Counting(Sorted, std::cell::Cell<usize>);

    impl SortedTags for Counting {
        fn names(&self, prefix: &str, after: Option<&str>, count: usize) -> Vec<String> {
            let page = self.0.names(prefix, after, count);
            self.1.set(self.1.get() + page.len());
            page
        }
        fn versions(&self, prefix: &str, below: Option<&str>, count: usize) -> Vec<String> {
            let page = self.0.versions(prefix, below, count);
            self.1.set(self.1.get() + page.len());
            page
        }
    }

    #[test]
    fn a_small_page_reads_few_keys_of_a_large_range() {
        let tags: Vec<String> =
            (0..1000).flat_map(|i| [format!("1.0.{i}"), format!("v1.1.{i}")]).collect();
        let refs: Vec<&str> = tags.iter().map(String::as_str).collect();
        let index = Counting(Sorted::of(&refs), Default::default());
        let read = |pattern: &str, order: TagOrder, limit: u32| {
            index.1.set(0);
            let found = TagQuery::new(pattern, order, limit, None).unwrap().run(&index);
            (found, index.1.get())
        };
        // The newest of two ranges of 1000: the top key of each.
        let (found, keys) = read(r"v?1\.\d+\.\d+", TagOrder::NewestFirst, 1);
        assert_eq!((found, keys), (vec!["v1.1.999".to_string()], 2));
        let (found, keys) = read(r"1\.0\..*", TagOrder::Name, 3);
        assert_eq!((found.len(), keys), (3, 3));
        // Entries that do not match are read past, in growing batches, to the same answer.
        let (found, keys) = read(r"1\.0\.\d*7", TagOrder::NewestFirst, 2);
        assert_eq!(found, ["1.0.997", "1.0.987"]);
        assert!(keys < 64, "{keys} keys read");
        let all = read(r"1\.0\.\d*7", TagOrder::NewestFirst, 1000).0;
        assert_eq!(all.len(), 100);
        let paged: Vec<String> = (0..50)
            .scan(None::<String>, |after, _| {
                let query = TagQuery::new(r"1\.0\.\d*7", TagOrder::NewestFirst, 2, after.clone());
                let page = query.unwrap().run(&index.0);
                *after = page.last().cloned();
                Some(page)
            })
            .flatten()
            .collect();
        assert_eq!(paged, all);
    }

    #[test]
    fn large_ranges_are_read_in_batches() {
        let tags: Vec<String> = (0..1000).map(|i| format!("1.0.{i}")).collect();
        let refs: Vec<&str> = tags.iter().map(String::as_str).collect();
        let index = Sorted::of(&refs);
        let newest = run(&index, r"1\.0\.\d+", TagOrder::NewestFirst, 1000, None);
        assert_eq!(newest.len(), 1000);
        assert_eq!((newest[0].as_str(), newest[999].as_str()), ("1.0.999", "1.0.0"));
        let named = run(&index, r"1\.0\.\d+", TagOrder::Name, 1000, None);
        assert_eq!(named.len(), 1000);
        assert!(named.windows(2).all(|w| w[0] < w[1]));
    }
}
