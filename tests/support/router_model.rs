//! A model of how registries route a request target, written from their side and
//! independently of the gate's classifier, to check it against: CNCF distribution (Go's
//! net/http decodes the path once, gorilla/mux cleans it and redirects, routes match
//! regexes), an nginx in front of a registry (decodes, merges slashes, resolves dot
//! segments) and lenient servers (decode more than once, read `\` as `/`, drop `;params`,
//! match route words and names in any case). Deliberately generous: a target is a manifest
//! write if any of these servers could route it to one.
#![allow(dead_code)]

use std::collections::BTreeSet;

/// One server's reading of a manifest write.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reading {
    /// `PUT` or `DELETE`.
    pub method: String,
    pub repository: String,
    pub reference: String,
    /// Tags from `tag` parameters (any spelling of the key, decoded values).
    pub parameters: BTreeSet<String>,
}

/// Every reading of `method target` as a manifest write; empty if no server modelled here
/// routes it to one.
pub fn manifest_writes(method: &str, target: &str) -> Vec<Reading> {
    let method = method.to_ascii_uppercase();
    if method != "PUT" && method != "DELETE" {
        return Vec::new();
    }
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let mut readings = BTreeSet::new();
    for path in path_readings(path) {
        let Some((repository, reference)) = route_manifest(&path) else { continue };
        for parameters in query_readings(query.unwrap_or_default()) {
            readings.insert(Reading {
                method: method.clone(),
                repository: repository.clone(),
                reference: reference.clone(),
                parameters,
            });
        }
    }
    readings.into_iter().collect()
}

/// The path as each server could see it before routing.
fn path_readings(path: &str) -> BTreeSet<String> {
    let mut decoded_layers = vec![path.to_string()];
    for _ in 0..3 {
        let next = unescape(decoded_layers.last().unwrap(), false);
        if next == *decoded_layers.last().unwrap() {
            break;
        }
        decoded_layers.push(next);
    }
    let mut readings = BTreeSet::new();
    for layer in decoded_layers {
        let backslashed = layer.replace('\\', "/");
        for variant in [drop_params(&layer), drop_params(&backslashed), layer, backslashed] {
            readings.insert(go_clean(&variant));
            readings.insert(go_clean(&variant).trim_end_matches('/').to_string());
            readings.insert(variant);
        }
    }
    readings
}

/// `^/v2/(name)/manifests/(reference)$` with route words and the name in any case: the
/// repository (lowercased) and the reference as written.
fn route_manifest(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix('/')?;
    let segments: Vec<&str> = rest.split('/').collect();
    let n = segments.len();
    if n < 4 || !segments[0].eq_ignore_ascii_case("v2") {
        return None;
    }
    if !segments[n - 2].eq_ignore_ascii_case("manifests") {
        return None;
    }
    let name = segments[1..n - 2].join("/").to_ascii_lowercase();
    let reference = segments[n - 1];
    (is_name(&name) && (is_tag(reference) || is_digest(reference)))
        .then(|| (name, reference.to_string()))
}

/// distribution's name grammar (its `reference` package), anchored.
fn is_name(name: &str) -> bool {
    static NAME: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        let component = "[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*";
        regex::Regex::new(&format!("^{component}(?:/{component})*$")).unwrap()
    });
    NAME.is_match(name)
}

fn is_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Any algorithm distribution knows (sha256, sha384, sha512) with hex of any case: a lenient
/// server might look it up.
fn is_digest(digest: &str) -> bool {
    match digest.split_once(':') {
        Some((algorithm, hex)) => {
            matches!(algorithm.to_ascii_lowercase().as_str(), "sha256" | "sha384" | "sha512")
                && !hex.is_empty()
                && hex.bytes().all(|b| b.is_ascii_hexdigit())
        }
        None => false,
    }
}

/// The `tag` parameters as each server could read them: split on `&` (Go) or on `&` and
/// `;` (older servers), keys in any case and with `[]`, `+` as space, values decoded.
fn query_readings(query: &str) -> BTreeSet<BTreeSet<String>> {
    let mut readings = BTreeSet::new();
    for separators in [&['&'][..], &['&', ';'][..]] {
        let mut tags = BTreeSet::new();
        for pair in query.split(separators) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = unescape(key, true).to_ascii_lowercase();
            let key = key.trim_end_matches("[]");
            if key == "tag" {
                tags.insert(unescape(value, true));
            }
        }
        readings.insert(tags);
    }
    readings
}

/// Percent-decoding; valid escapes only (a lenient server keeps the others as they are).
fn unescape(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
        if let (b'%', Some(h), Some(l)) = (bytes[i], hex(i + 1), hex(i + 2)) {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(if plus_is_space && bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn drop_params(path: &str) -> String {
    path.split('/').map(|s| s.split(';').next().unwrap()).collect::<Vec<_>>().join("/")
}

/// Go's `path.Clean` on a rooted path, keeping a trailing slash as gorilla/mux does.
fn go_clean(path: &str) -> String {
    let mut stack: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                stack.pop();
            }
            other => stack.push(other),
        }
    }
    let mut cleaned = format!("/{}", stack.join("/"));
    if path.ends_with('/') && cleaned != "/" {
        cleaned.push('/');
    }
    cleaned
}

/// The gate's promise, checked against the model for one request: a request that any
/// modelled server routes to a manifest write is decided as exactly that write (every
/// reading agrees with the gate, on what the client sent and on what the gate forwards) or
/// refused; never passed through.
pub fn check_gate(method: &str, target: &str) -> Result<(), String> {
    use tagpolicy_gate::route::{PassWrites, Reference, Route, WriteMethod, classify};
    let Ok(method_value) = http::Method::from_bytes(method.as_bytes()) else { return Ok(()) };
    let Ok(uri) = target.parse::<http::Uri>() else { return Ok(()) };
    // What the gate forwards when it passes a request: its own parse of the target.
    let forwarded = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let pass = PassWrites::new(&["/api/**".to_string(), "/v2/_ext/**".to_string()]).unwrap();
    let readings = manifest_writes(method, forwarded);
    match classify(&method_value, &uri, &pass) {
        Route::Refused(_) => Ok(()),
        Route::Manifest(write) => {
            let expected = Reading {
                method: match write.method {
                    WriteMethod::Put => "PUT".into(),
                    WriteMethod::Delete => "DELETE".into(),
                },
                repository: write.repository.clone(),
                reference: match &write.reference {
                    Reference::Tag(tag) => tag.clone(),
                    Reference::Digest(digest) => digest.clone(),
                },
                parameters: write.parameters.iter().cloned().collect(),
            };
            if readings != [expected.clone()] {
                return Err(format!(
                    "`{method} {target}` decided as {expected:?}, but servers read it as {readings:?}"
                ));
            }
            let sent = manifest_writes(method, &write.target());
            if sent != [expected.clone()] {
                return Err(format!(
                    "`{method} {target}` decided as {expected:?}, but the gate sends `{}`, read as {sent:?}",
                    write.target()
                ));
            }
            Ok(())
        }
        _ if readings.is_empty() => Ok(()),
        passed => Err(format!(
            "`{method} {target}` passed through as {passed:?}, but servers read it as the manifest write {readings:?}"
        )),
    }
}
