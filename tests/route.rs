//! The gate's request classifier against a model of how registries route requests
//! (tests/support/router_model.rs): random spellings of manifest writes, blob uploads and
//! other writes; every one that some server would route to a manifest write must be decided
//! as exactly that write or refused, never passed through.

#[path = "support/router_model.rs"]
mod router_model;

use proptest::prelude::*;
use router_model::{check_gate, manifest_writes};
use tagpolicy_gate::route::{PassWrites, Reference, Route, classify};

const DIGEST: &str = "sha256:4701d9d4dc91b84e8ed7f17ad32d1bd9ebc2bcea8ae3e8f6e4b5e2d1b3a9c0ff";

/// Requests built from these word lists, with each word's characters spelled in turn.
const TEMPLATES: &[&[&str]] = &[
    &["v2", "team", "app", "manifests", "1.0.0"],
    &["v2", "team", "app", "manifests", DIGEST],
    &["v2", "app", "manifests", "latest"],
    &["v2", "team", "app", "blobs", "uploads", "0f3c-aa_1="],
    &["v2", "team", "app", "blobs", "uploads", ""],
    &["v2", "team", "app", "blobs", DIGEST],
    &["v2", "_ext", "team", "manifests", "x"],
    &["api", "team", "app", "manifests", "1.0.0"],
    &["api", "..", "v2", "team", "app", "manifests", "1.0.0"],
];

/// Segments a hostile client might insert anywhere.
const NOISE: &[&str] = &[".", "..", "", "x", "v2", "V2", "manifests", "MANIFESTS", "api", "x;p"];

/// Between segments: the plain `/` most of the time, else a spelling of it.
const SEPARATORS: &[&str] =
    &["/", "/", "/", "/", "/", "//", "%2F", "%2f", "%252F", "\\", "%5C", "/./", "/x/../", ";p/"];

const QUERIES: &[&str] = &[
    "",
    "",
    "?",
    "?tag=a",
    "?tag=1.0.0&tag=latest",
    "?tag=a&tag=a",
    "?TAG=a",
    "?Tag=a",
    "?%74ag=a",
    "?tag=%61",
    "?tag=a+b",
    "?tag=a;tag=b",
    "?tag",
    "?x=1",
    "?tag[]=a",
    "?tag=a&",
    "?&tag=a",
    "?tag=a%26tag=b",
    "?tag=",
    "?_state=abc%3D",
];

const SUFFIXES: &[&str] = &["", "", "", "/", "/.", "/..", "%2F", ";x", "#frag", "%00", "%20"];

const METHODS: &[&str] =
    &["PUT", "PUT", "DELETE", "DELETE", "POST", "PATCH", "GET", "HEAD", "put", "Delete", "OPTIONS"];

/// `word` with each character spelled by one `choice` (below 12: as is; then percent-encoded
/// with upper- or lowercase hex, encoded twice, or in the other case).
fn spell(word: &str, choices: &[u8]) -> String {
    let mut out = String::new();
    for (i, c) in word.chars().enumerate() {
        match choices.get(i).copied().unwrap_or(0) % 16 {
            12 => out.push_str(&format!("%{:02X}", c as u32)),
            13 => out.push_str(&format!("%{:02x}", c as u32)),
            14 => out.push_str(&format!("%25{:02X}", c as u32)),
            15 if c.is_ascii_lowercase() => out.push(c.to_ascii_uppercase()),
            15 => out.push(c.to_ascii_lowercase()),
            _ => out.push(c),
        }
    }
    out
}

/// One change to the plain spelling of a template.
#[derive(Debug, Clone)]
enum Change {
    /// Spell one character of one word otherwise.
    Spell {
        word: usize,
        at: usize,
        choice: u8,
    },
    Separator {
        at: usize,
        separator: &'static str,
    },
    Insert {
        at: usize,
        word: &'static str,
    },
    Suffix(&'static str),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (0..8usize, 0..70usize, 12u8..16).prop_map(|(word, at, choice)| Change::Spell {
            word,
            at,
            choice
        }),
        (1..8usize, prop::sample::select(SEPARATORS))
            .prop_map(|(at, separator)| Change::Separator { at, separator }),
        (0..8usize, prop::sample::select(NOISE)).prop_map(|(at, word)| Change::Insert { at, word }),
        prop::sample::select(SUFFIXES).prop_map(Change::Suffix),
    ]
}

/// A template's words, joined with separators, each word spelled by its choices.
fn assemble(
    words: &[String],
    separators: &[&str],
    choices: &[Vec<u8>],
    suffix: &str,
    query: &str,
) -> String {
    let mut target = String::from("/");
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            target.push_str(separators.get(i).copied().unwrap_or("/"));
        }
        target.push_str(&spell(word, choices.get(i).map(Vec::as_slice).unwrap_or_default()));
    }
    format!("{target}{suffix}{query}")
}

/// Half the requests are one or two changes away from a plain route (where a classifier's
/// mistakes would hide), the other half are changed anywhere.
fn target() -> impl Strategy<Value = String> {
    let near = (
        prop::sample::select(TEMPLATES),
        prop::collection::vec(change(), 1..3),
        prop::sample::select(QUERIES),
    )
        .prop_map(|(template, changes, query)| {
            let mut words: Vec<String> = template.iter().map(|w| w.to_string()).collect();
            let mut separators = vec!["/"; 12];
            let mut choices = vec![Vec::new(); 12];
            let mut suffix = "";
            for change in changes {
                match change {
                    Change::Spell { word, at, choice } => {
                        let word = word % words.len();
                        let at = at % words[word].len().max(1);
                        choices[word].resize(at + 1, 0);
                        choices[word][at] = choice;
                    }
                    Change::Separator { at, separator } => {
                        separators[at % words.len().max(1)] = separator
                    }
                    Change::Insert { at, word } => {
                        words.insert(at.min(words.len()), word.to_string())
                    }
                    Change::Suffix(text) => suffix = text,
                }
            }
            assemble(&words, &separators, &choices, suffix, query)
        });
    let anywhere = (
        prop::sample::select(TEMPLATES),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 80), 8),
        prop::collection::vec(prop::sample::select(SEPARATORS), 8),
        prop::collection::vec((0..8usize, prop::sample::select(NOISE)), 0..3),
        prop::sample::select(QUERIES),
        prop::sample::select(SUFFIXES),
    )
        .prop_map(|(template, choices, separators, noise, query, suffix)| {
            let mut words: Vec<String> = template.iter().map(|w| w.to_string()).collect();
            for (at, word) in noise {
                words.insert(at.min(words.len()), word.to_string());
            }
            assemble(&words, &separators, &choices, suffix, query)
        });
    prop_oneof![near, anywhere]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_spelling_of_a_manifest_write_passes_undecided(
        method in prop::sample::select(METHODS),
        target in target(),
    ) {
        if let Err(message) = check_gate(method, &target) {
            return Err(TestCaseError::fail(message));
        }
    }

    /// The plain spelling of any push is decided, with the name, reference and tags it names
    /// (a classifier that refused everything would pass the property above).
    #[test]
    fn the_plain_spelling_of_any_push_is_decided(
        name in "[a-z0-9]{1,6}((\\.|_|__|-{1,2})[a-z0-9]{1,6})?(/[a-z0-9]{1,6}){0,3}",
        tag in "[A-Za-z0-9_][A-Za-z0-9._-]{0,40}",
        parameters in prop::collection::vec("[A-Za-z0-9_][A-Za-z0-9._-]{0,20}", 0..5),
    ) {
        let mut unique: Vec<&String> = Vec::new();
        for tag in &parameters {
            if !unique.contains(&tag) {
                unique.push(tag);
            }
        }
        let query: Vec<String> = unique.iter().map(|t| format!("tag={t}")).collect();
        let target = if query.is_empty() {
            format!("/v2/{name}/manifests/{tag}")
        } else {
            format!("/v2/{name}/manifests/{tag}?{}", query.join("&"))
        };
        let Route::Manifest(write) = classify(&http::Method::PUT, &target.parse().unwrap(), &PassWrites::none()) else {
            return Err(TestCaseError::fail(format!("`PUT {target}` was not decided")));
        };
        prop_assert_eq!(&write.repository, &name);
        prop_assert_eq!(&write.reference, &Reference::Tag(tag.clone()));
        prop_assert_eq!(write.target(), target.clone());
        prop_assert_eq!(manifest_writes("PUT", &target).len(), 1);
        check_gate("PUT", &target).map_err(TestCaseError::fail)?;
    }
}

/// Cases the generator might miss, each a bypass class seen in real registries or proxies.
#[test]
fn known_bypass_spellings_are_refused_or_decided() {
    let spellings = [
        "/v2/team%2Fapp/manifests/1.0.0",
        "/v2/team%2fapp/manifests/1.0.0",
        "/v2/team%252Fapp/manifests/1.0.0",
        "/v2//team/app/manifests/1.0.0",
        "//v2/team/app/manifests/1.0.0",
        "/v2/team/app/manifests/1.0.0/",
        "/v2/team/./app/manifests/1.0.0",
        "/v2/x/../team/app/manifests/1.0.0",
        "/x/../v2/team/app/manifests/1.0.0",
        "/v2/team/app/manifests/%31.0.0",
        "/v2/team/app/%6danifests/1.0.0",
        "/%76%32/team/app/manifests/1.0.0",
        "/V2/team/app/manifests/1.0.0",
        "/v2/team/app/MANIFESTS/1.0.0",
        "/v2/Team/app/manifests/1.0.0",
        "/v2\\team\\app\\manifests\\1.0.0",
        "/v2/team/app;x/manifests/1.0.0",
        "/v2/team/app/manifests/1.0.0;x",
        "/v2/team/app/manifests/1.0.0?TAG=2.0.0",
        "/v2/team/app/manifests/1.0.0?%74ag=2.0.0",
        "/v2/team/app/manifests/1.0.0?tag=2.0.0;tag=3.0.0",
        "http://elsewhere/v2/team%2Fapp/manifests/1.0.0",
        "/api/../v2/team/app/manifests/1.0.0",
        "/api/%2e%2e/v2/team/app/manifests/1.0.0",
        "/api/%252e%252e/v2/team/app/manifests/1.0.0",
    ];
    for target in spellings {
        for method in ["PUT", "DELETE", "put"] {
            check_gate(method, target).unwrap();
        }
        // Each reads as a manifest write to some server, so the check above is not vacuous.
        assert!(
            !manifest_writes("PUT", target.trim_start_matches("http://elsewhere")).is_empty(),
            "the model does not route `{target}`"
        );
    }
}

/// The model itself: it must route what distribution routes, or the property proves nothing.
#[test]
fn the_model_routes_what_distribution_routes() {
    let writes = manifest_writes("PUT", "/v2/team%2Fapp/manifests/1.0.0?tag=x");
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].repository, "team/app");
    assert_eq!(writes[0].reference, "1.0.0");
    assert!(writes[0].parameters.contains("x"));
    assert!(manifest_writes("PUT", "/v2/team/app/blobs/uploads/x").is_empty());
    assert!(manifest_writes("GET", "/v2/team/app/manifests/1.0.0").is_empty());
    assert!(!manifest_writes("DELETE", &format!("/v2/a/manifests/{DIGEST}")).is_empty());
}
