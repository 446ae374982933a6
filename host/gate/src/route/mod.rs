//! How the gate reads a request: the tag changes it decides, the requests it passes through,
//! and the writes it refuses because a registry behind it could read them differently.
//!
//! A registry routes a request after its own decoding and cleaning of the path: CNCF
//! distribution decodes `%2F` (so `/v2/team%2Fapp/manifests/1.0.0` is a push of `team/app`)
//! and redirects dot segments; an nginx in front of Harbor merges slashes and routes the
//! result. Predicting one registry is not enough, so the gate does not try: it accepts the
//! distribution API only in its one plain spelling, where every server reads the same route,
//! and refuses every other write that any reading would put under `/v2/`. OCI names, tags and
//! digests contain no `%`, `\`, `;` or empty and dot segments, so no client that follows the
//! spec is refused.
//!
//! ```
//! use http::Method;
//! use tagpolicy_gate::route::{PassWrites, Reference, Route, classify};
//!
//! let route = |method: Method, target: &str| {
//!     classify(&method, &target.parse().unwrap(), &PassWrites::none())
//! };
//! // The plain spelling of a push is decided...
//! let Route::Manifest(push) = route(Method::PUT, "/v2/team/app/manifests/1.0.0") else { panic!() };
//! assert_eq!(push.repository, "team/app");
//! assert_eq!(push.reference, Reference::Tag("1.0.0".into()));
//! // ...and another spelling of the same push is refused, not passed through.
//! let Route::Refused(refusal) = route(Method::PUT, "/v2/team%2Fapp/manifests/1.0.0") else { panic!() };
//! assert_eq!((refusal.status.as_u16(), refusal.code), (400, "NAME_INVALID"));
//! // Reads pass; writes the gate does not know are refused unless listed in `pass_writes`.
//! assert_eq!(route(Method::GET, "/v2/team%2Fapp/manifests/1.0.0"), Route::Read);
//! assert!(matches!(route(Method::DELETE, "/api/v2.0/projects/team"), Route::Refused(_)));
//! ```

mod readings;

use readings::readings;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use http::{HeaderMap, Method, StatusCode, Uri};
use tagpolicy::oci::{check_digest, check_repository, check_tag, shown};

/// Most tags in one push (the spec asks registries to accept at least 10).
pub const MAX_TAGS_PER_PUSH: usize = 100;

/// How many times a path outside the API is percent-decoded when looking for a reading that
/// lands in it; a path still encoded after that is refused.
const MAX_DECODINGS: usize = 3;

/// Headers with which some servers, frameworks and proxies replace the method or the path of
/// a request. No registry client sends them; the gate removes them so that the upstream
/// routes exactly the method and path the gate classified. Compared with `_` read as `-`,
/// since CGI-style servers merge the two spellings.
const OVERRIDE_HEADERS: [&str; 12] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-method",
    "x-original-url",
    "x-original-uri",
    "x-rewrite-url",
    "x-forwarded-uri",
    "x-forwarded-method",
    "x-forwarded-path",
    "x-forwarded-prefix",
    "x-envoy-original-path",
];

/// The client headers a decided write carries upstream; every other header is dropped, so
/// that no header the gate does not know can change how the upstream applies the write.
/// `Content-Length` is set from the body the gate sends.
const DECIDED_WRITE_HEADERS: [&str; 10] = [
    "host",
    "authorization",
    "content-type",
    "accept",
    "user-agent",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-for",
    "x-request-id",
    "traceparent",
];

/// What the gate does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET` or `HEAD`: passed through; reads change no tag.
    Read,
    /// `PUT` or `DELETE` of a manifest: decided by the policies.
    Manifest(ManifestWrite),
    /// A blob upload (start, chunk, finish, cancel, cross-repository mount): passed through;
    /// it changes no tag.
    Upload,
    /// A write the operator listed in `pass_writes`: passed through, bypassing the policies.
    Listed,
    /// Refused with an OCI error body; nothing is sent upstream.
    Refused(Refusal),
}

/// `PUT|DELETE /v2/<name>/manifests/<reference>[?tag=...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestWrite {
    pub method: WriteMethod,
    pub repository: String,
    pub reference: Reference,
    /// The `tag` parameters of a `PUT`, in order, without repeats.
    pub parameters: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMethod {
    Put,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(String),
}

impl Reference {
    pub fn as_str(&self) -> &str {
        match self {
            Reference::Tag(text) | Reference::Digest(text) => text,
        }
    }
}

impl ManifestWrite {
    /// Every tag a `PUT` sets: the one in the path, then the `tag` parameters, without repeats.
    pub fn tags(&self) -> Vec<String> {
        let mut tags: Vec<String> = match &self.reference {
            Reference::Tag(tag) => vec![tag.clone()],
            Reference::Digest(_) => Vec::new(),
        };
        for tag in &self.parameters {
            if !tags.contains(tag) {
                tags.push(tag.clone());
            }
        }
        tags
    }

    /// The request target the gate sends upstream, built from what it decided rather than
    /// copied from the client.
    pub fn target(&self) -> String {
        let mut target = format!("/v2/{}/manifests/{}", self.repository, self.reference.as_str());
        for (index, tag) in self.parameters.iter().enumerate() {
            target.push(if index == 0 { '?' } else { '&' });
            target.push_str("tag=");
            target.push_str(tag);
        }
        target
    }
}

/// Why a request is refused, with the OCI error the client gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    /// One of the distribution spec's error codes.
    pub code: &'static str,
    pub message: String,
    pub kind: RefusalKind,
}

/// The class of a refusal, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// A path spelled so that some registry could read another route than the plain one.
    Spelling,
    /// Query parameters on a manifest write other than plain `tag=<tag>`.
    Parameters,
    /// A write the gate does not know and the operator did not list.
    UnknownWrite,
    /// A manifest write by a digest of an algorithm other than sha256.
    DigestAlgorithm,
}

impl RefusalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalKind::Spelling => "spelling",
            RefusalKind::Parameters => "parameters",
            RefusalKind::UnknownWrite => "unknown_write",
            RefusalKind::DigestAlgorithm => "digest_algorithm",
        }
    }
}

/// Paths of writes outside the tag-changing API that the operator lets through undecided
/// (`pass_writes` in the configuration), e.g. a registry's own management API.
#[derive(Debug, Clone, Default)]
pub struct PassWrites {
    patterns: Vec<String>,
    set: GlobSet,
}

impl PassWrites {
    pub fn none() -> Self {
        PassWrites::default()
    }

    /// Globs over the request path: `*` stays within a path segment, `**` crosses them.
    /// The error names the glob by its index.
    pub fn new(patterns: &[String]) -> Result<Self, String> {
        let mut set = GlobSetBuilder::new();
        for (index, pattern) in patterns.iter().enumerate() {
            if !pattern.starts_with('/') {
                return Err(format!(
                    "[{index}]: `{pattern}` must start with `/`: it is matched against the request path"
                ));
            }
            let glob = GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map_err(|e| format!("[{index}]: `{pattern}` is not a valid glob: {e}"))?;
            set.add(glob);
        }
        let set = set.build().map_err(|e| format!(": {e}"))?;
        Ok(PassWrites { patterns: patterns.to_vec(), set })
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    fn matches(&self, path: &str) -> bool {
        !self.patterns.is_empty() && self.set.is_match(path)
    }
}

/// Remove the headers with which some servers let a request replace its method or path
/// (`X-HTTP-Method-Override`, `X-Original-URL`, `X_Original_URL`, …); returns how many
/// were removed.
pub fn strip_overrides(headers: &mut HeaderMap) -> usize {
    let overriding: Vec<http::HeaderName> = headers
        .keys()
        .filter(|name| {
            let name = name.as_str().replace('_', "-");
            OVERRIDE_HEADERS.contains(&name.as_str())
        })
        .cloned()
        .collect();
    overriding.iter().map(|name| headers.remove(name).map_or(0, |_| 1)).sum()
}

/// Remove the `X-Forwarded-*` and `Forwarded` headers of a client that is not a trusted proxy:
/// they say which scheme, host and address the request came from, and only the gate (or a
/// proxy in front of it that it trusts) knows that.
pub fn strip_forwarded(headers: &mut HeaderMap) {
    let forwarded: Vec<http::HeaderName> = headers
        .keys()
        .filter(|name| {
            let name = name.as_str().replace('_', "-");
            name == "forwarded" || name.starts_with("x-forwarded-")
        })
        .cloned()
        .collect();
    for name in forwarded {
        headers.remove(name);
    }
}

/// The headers of a decided write as sent upstream: only those in the allow-list.
pub fn decided_write_headers(client: &HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for name in DECIDED_WRITE_HEADERS {
        for value in client.get_all(name) {
            headers.append(http::HeaderName::from_static(name), value.clone());
        }
    }
    headers
}

/// Classify a request by its method and target (origin or absolute form; only the path and
/// query count, as the gate forwards them to its own upstream).
pub fn classify(method: &Method, target: &Uri, pass: &PassWrites) -> Route {
    if method == Method::GET || method == Method::HEAD {
        return Route::Read;
    }
    let path = target.path();
    match plain_api_segments(path) {
        Some(segments) => api_write(method, path, &segments, target.query(), pass),
        None => other_write(method, path, pass),
    }
}

/// The segments after `/v2/` of a path in the API's plain spelling: `/v2/` first, only the
/// bytes of names, tags, digests and upload ids, no empty or dot segments but a final
/// trailing slash (kept as a last empty segment). `None` for any other path.
fn plain_api_segments(path: &str) -> Option<Vec<&str>> {
    let rest = path.strip_prefix("/v2/").or(if path == "/v2" { Some("") } else { None })?;
    if !path.bytes().all(is_plain_byte) {
        return None;
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let last = segments.len() - 1;
    let clean = segments
        .iter()
        .enumerate()
        .all(|(i, s)| !matches!(*s, "." | "..") && (!s.is_empty() || i == last));
    clean.then_some(segments)
}

fn is_plain_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'.' | b'_' | b'-' | b':' | b'=')
}

/// A write whose path is in the API's plain spelling.
fn api_write(
    method: &Method,
    path: &str,
    segments: &[&str],
    query: Option<&str>,
    pass: &PassWrites,
) -> Route {
    let (segments, trailing_slash) = match segments.split_last() {
        Some((&"", rest)) => (rest, true),
        _ => (segments, false),
    };
    let n = segments.len();
    // `<name>/manifests/<reference>`: the last `manifests` segment, as distribution's route
    // (a reference has no `/`). A spelling in another case is what a case-insensitive
    // server would route, so it counts too.
    if n >= 3 && segments[n - 2].eq_ignore_ascii_case("manifests") {
        if segments[n - 2] != "manifests" {
            return spelling(path, "the route is spelled `manifests`, in lowercase");
        }
        if trailing_slash {
            return spelling(path, "a trailing `/`");
        }
        return manifest_write(method, path, &segments[..n - 2], segments[n - 1], query);
    }
    let upload_start = n >= 3 && segments[n - 2..] == ["blobs", "uploads"];
    let upload_session = n >= 4 && segments[n - 3..n - 1] == ["blobs", "uploads"];
    let upload = match (upload_start, upload_session) {
        (true, _) => *method == Method::POST,
        (false, true) => {
            !trailing_slash && matches!(*method, Method::PATCH | Method::PUT | Method::DELETE)
        }
        _ => false,
    };
    if upload {
        let name = if upload_start { &segments[..n - 2] } else { &segments[..n - 3] };
        return match check_repository(&name.join("/")) {
            Ok(()) => Route::Upload,
            Err(error) => invalid("NAME_INVALID", RefusalKind::Spelling, error),
        };
    }
    if pass.matches(path) { Route::Listed } else { unknown_write(method, path) }
}

fn manifest_write(
    method: &Method,
    path: &str,
    name: &[&str],
    reference: &str,
    query: Option<&str>,
) -> Route {
    let method = match *method {
        Method::PUT => WriteMethod::Put,
        Method::DELETE => WriteMethod::Delete,
        // Never listed: a manifest route is decided or refused.
        _ => return unknown_write(method, path),
    };
    let repository = name.join("/");
    if let Err(error) = check_repository(&repository) {
        return invalid("NAME_INVALID", RefusalKind::Spelling, error);
    }
    let reference = if reference.contains(':') {
        match check_digest(reference) {
            // The gate knows which tags point at an image by the sha256 digests the registry
            // answers with; a write by another algorithm's digest would be decided with no
            // tags, and a registry that addresses manifests by it would apply it undecided.
            Ok(()) if !reference.starts_with("sha256:") => {
                return invalid(
                    "UNSUPPORTED",
                    RefusalKind::DigestAlgorithm,
                    format!(
                        "the gate decides manifest writes by sha256 digest only, not `{}`",
                        shown(reference)
                    ),
                );
            }
            Ok(()) => Reference::Digest(reference.to_string()),
            Err(error) => return invalid("DIGEST_INVALID", RefusalKind::Spelling, error),
        }
    } else {
        match check_tag(reference) {
            Ok(()) => Reference::Tag(reference.to_string()),
            Err(error) => return invalid("TAG_INVALID", RefusalKind::Spelling, error),
        }
    };
    let parameters = match (method, query) {
        (_, None) => Vec::new(),
        (_, Some("")) => Vec::new(),
        (WriteMethod::Put, Some(query)) => match tag_parameters(query) {
            Ok(tags) => tags,
            Err(refusal) => return Route::Refused(refusal),
        },
        (WriteMethod::Delete, Some(query)) => {
            return invalid(
                "UNSUPPORTED",
                RefusalKind::Parameters,
                format!(
                    "a manifest DELETE takes no parameters; the gate refuses `?{}`",
                    shown(query)
                ),
            );
        }
    };
    Route::Manifest(ManifestWrite { method, repository, reference, parameters })
}

/// `tag=a&tag=b`, and nothing else: a parameter spelled otherwise (`TAG=`, `%74ag=`, `tag[]=`,
/// `;tag=`, an encoded value) might be applied as a tag by some registry and not by another.
fn tag_parameters(query: &str) -> Result<Vec<String>, Refusal> {
    // Counted before any other work, repeats included: a client that repeats a tag thousands
    // of times would otherwise cost a check and a comparison with every tag kept.
    let count = query.split('&').count();
    if count > MAX_TAGS_PER_PUSH {
        return Err(too_many_tags(count));
    }
    let mut tags: Vec<String> = Vec::new();
    for pair in query.split('&') {
        let tag = match pair.split_once('=') {
            Some(("tag", value)) => value,
            _ => {
                return Err(refusal(
                    StatusCode::BAD_REQUEST,
                    "UNSUPPORTED",
                    RefusalKind::Parameters,
                    format!(
                        "the gate accepts only `tag=<tag>` parameters on a manifest PUT, not `{}`: \
                         some registries would read it as a tag",
                        shown(pair)
                    ),
                ));
            }
        };
        check_tag(tag).map_err(|error| {
            refusal(StatusCode::BAD_REQUEST, "TAG_INVALID", RefusalKind::Parameters, error)
        })?;
        if !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_string());
        }
    }
    Ok(tags)
}

fn too_many_tags(count: usize) -> Refusal {
    refusal(
        StatusCode::BAD_REQUEST,
        "TAG_INVALID",
        RefusalKind::Parameters,
        format!("at most {MAX_TAGS_PER_PUSH} `tag` parameters in one push; this one has {count}"),
    )
}

/// A write whose path is not in the API's plain spelling: refused if any reading of it lands
/// under `/v2`; otherwise passed only if every reading is listed in `pass_writes`.
fn other_write(method: &Method, path: &str, pass: &PassWrites) -> Route {
    let Some(readings) = readings(path) else {
        return spelling(
            path,
            &format!(
                "it decodes to something other than plain ASCII, or stays percent-encoded after {MAX_DECODINGS} decodings"
            ),
        );
    };
    let in_api = |reading: &String| {
        let first = reading.trim_start_matches('/').split('/').next().unwrap_or_default();
        first.eq_ignore_ascii_case("v2")
    };
    if readings.iter().any(in_api) {
        return spelling(path, &spelling_problem(path));
    }
    if readings.iter().all(|reading| pass.matches(reading)) {
        Route::Listed
    } else {
        unknown_write(method, path)
    }
}

/// What makes `path` differ from the API's plain spelling, for the refusal's message.
fn spelling_problem(path: &str) -> String {
    if path.contains('%') {
        return "percent-encoding, which a registry decodes (`%2F` is `/`)".into();
    }
    if let Some(byte) = path.bytes().find(|&b| !is_plain_byte(b)) {
        return format!(
            "the character `{}`, which no OCI name, tag or digest contains",
            byte as char
        );
    }
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    if segments.iter().any(|s| matches!(*s, "." | "..")) {
        return "a `.` or `..` segment, which a registry resolves".into();
    }
    if segments.iter().any(|s| s.is_empty()) {
        return "an empty segment (`//`), which a registry may merge".into();
    }
    "a spelling of `/v2/` in another case".into()
}

fn spelling(path: &str, problem: &str) -> Route {
    invalid(
        "NAME_INVALID",
        RefusalKind::Spelling,
        format!(
            "the gate refuses `{}`: {problem}; a tag change is accepted only in the plain spelling of the OCI distribution API",
            shown(path)
        ),
    )
}

fn unknown_write(method: &Method, path: &str) -> Route {
    Route::Refused(refusal(
        StatusCode::FORBIDDEN,
        "DENIED",
        RefusalKind::UnknownWrite,
        format!(
            "the gate does not pass `{} {}`: it is not a write of the OCI distribution API it decides, and it is not listed in `pass_writes`",
            shown(method.as_str()),
            shown(path)
        ),
    ))
}

fn invalid(code: &'static str, kind: RefusalKind, message: String) -> Route {
    Route::Refused(refusal(StatusCode::BAD_REQUEST, code, kind, message))
}

fn refusal(status: StatusCode, code: &'static str, kind: RefusalKind, message: String) -> Refusal {
    Refusal { status, code, message, kind }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:4701d9d4dc91b84e8ed7f17ad32d1bd9ebc2bcea8ae3e8f6e4b5e2d1b3a9c0ff";

    /// A short account of the route: `decide`, `read`, `upload`, `listed`, or the refusal's
    /// status and code.
    fn outcome(method: &str, target: &str, pass: &PassWrites) -> String {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        match classify(&method, &target.parse().unwrap(), pass) {
            Route::Read => "read".into(),
            Route::Manifest(_) => "decide".into(),
            Route::Upload => "upload".into(),
            Route::Listed => "listed".into(),
            Route::Refused(refusal) => format!("{} {}", refusal.status.as_u16(), refusal.code),
        }
    }

    #[test]
    fn each_request_gets_its_route() {
        let pass = PassWrites::new(&["/api/v2.0/**".into(), "/v2/_zot/ext/**".into()]).unwrap();
        let digest_put = format!("/v2/team/app/manifests/{DIGEST}");
        let sha512 = format!("/v2/team/app/manifests/sha512:{}", "ab".repeat(64));
        let cases: &[(&str, &str, &str)] = &[
            ("PUT", "/v2/team/app/manifests/1.0.0", "decide"),
            ("DELETE", "/v2/team/app/manifests/1.0.0", "decide"),
            ("PUT", &digest_put, "decide"),
            ("PUT", "/v2/app/manifests/1.0.0?tag=a&tag=b", "decide"),
            ("PUT", "/v2/app/manifests/1.0.0?", "decide"),
            // A repository may itself be called `manifests`, or contain `blobs/uploads`.
            ("PUT", "/v2/x/manifests/manifests/latest", "decide"),
            ("PUT", "/v2/a/blobs/uploads/manifests/x", "decide"),
            ("GET", "/v2/team%2Fapp/manifests/1.0.0", "read"),
            ("HEAD", "/v2/team/app/manifests/1.0.0", "read"),
            ("POST", "/v2/team/app/blobs/uploads/", "upload"),
            ("POST", "/v2/team/app/blobs/uploads/?mount=sha256:ab&from=other/app", "upload"),
            ("PATCH", "/v2/team/app/blobs/uploads/4b2e-9f=?_state=a%3D", "upload"),
            ("PUT", "/v2/team/app/blobs/uploads/4b2e?digest=sha256:ab", "upload"),
            ("DELETE", "/v2/team/app/blobs/uploads/4b2e", "upload"),
            // Spellings some registry reads as a manifest write.
            ("PUT", "/v2/team%2Fapp/manifests/1.0.0", "400 NAME_INVALID"),
            ("DELETE", "/v2/team/app/manifests/1.0.0/", "400 NAME_INVALID"),
            ("PUT", "/v2/team/app/MANIFESTS/1.0.0", "400 NAME_INVALID"),
            ("PUT", "/V2/team/app/manifests/1.0.0", "400 NAME_INVALID"),
            ("PUT", "/v2/Team/app/manifests/1.0.0", "400 NAME_INVALID"),
            ("PUT", "/v2/app/manifests/1.0.0!", "400 NAME_INVALID"),
            ("PUT", "/v2/app/manifests/sha384:abc", "400 DIGEST_INVALID"),
            // Digests of another algorithm: the gate could not match them to tags.
            ("DELETE", &sha512, "400 UNSUPPORTED"),
            ("PUT", &sha512, "400 UNSUPPORTED"),
            ("PUT", "/v2/app/manifests/.x", "400 TAG_INVALID"),
            ("PUT", "/api/v2.0/../../v2/app/manifests/x", "400 NAME_INVALID"),
            ("PUT", "/api/v2.0/%2e%2e/%2e%2e/v2/app/manifests/x", "400 NAME_INVALID"),
            // Parameters other than plain `tag=`.
            ("PUT", "/v2/app/manifests/1.0.0?TAG=2", "400 UNSUPPORTED"),
            ("PUT", "/v2/app/manifests/1.0.0?tag=%32", "400 TAG_INVALID"),
            ("PUT", "/v2/app/manifests/1.0.0?tag=2;tag=3", "400 TAG_INVALID"),
            ("PUT", "/v2/app/manifests/1.0.0?tag=2&", "400 UNSUPPORTED"),
            ("DELETE", "/v2/app/manifests/1.0.0?tag=2", "400 UNSUPPORTED"),
            // Writes the gate does not know: refused unless listed; a manifest route never is.
            ("DELETE", &format!("/v2/team/app/blobs/{DIGEST}"), "403 DENIED"),
            ("POST", "/v2/team/app/manifests/1.0.0", "403 DENIED"),
            ("put", "/v2/team/app/manifests/1.0.0", "403 DENIED"),
            ("PATCH", "/v2/team/app/blobs/uploads/", "403 DENIED"),
            ("PUT", "/api/v2.0/projects/team", "listed"),
            (
                "DELETE",
                "/api/v2.0/projects/p/repositories/team%252Fapp/artifacts/x/tags/y",
                "listed",
            ),
            ("PUT", "/v2/_zot/ext/userprefs", "listed"),
            ("PUT", "/api/v1/repository/team/app/tag/1.0.0", "403 DENIED"),
            ("PUT", "/api/v2.0/x/../../v1/y", "403 DENIED"),
            ("OPTIONS", "*", "403 DENIED"),
        ];
        let mut wrong = Vec::new();
        for (method, target, expected) in cases {
            let got = outcome(method, target, &pass);
            if got != *expected {
                wrong.push(format!("{method} {target}: {got}, expected {expected}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn a_push_is_read_with_every_tag_it_sets() {
        let target: Uri =
            "/v2/team/app/manifests/1.0.0?tag=1.0&tag=1.0.0&tag=latest&tag=1.0".parse().unwrap();
        let Route::Manifest(write) = classify(&Method::PUT, &target, &PassWrites::none()) else {
            panic!("not decided")
        };
        assert_eq!(write.parameters, ["1.0", "1.0.0", "latest"]);
        assert_eq!(write.tags(), ["1.0.0", "1.0", "latest"]);
        assert_eq!(write.target(), "/v2/team/app/manifests/1.0.0?tag=1.0&tag=1.0.0&tag=latest");
        let too_many: Vec<String> = (0..=MAX_TAGS_PER_PUSH).map(|i| format!("tag=t{i}")).collect();
        let target: Uri =
            format!("/v2/a/manifests/{DIGEST}?{}", too_many.join("&")).parse().unwrap();
        let Route::Refused(refusal) = classify(&Method::PUT, &target, &PassWrites::none()) else {
            panic!("not refused")
        };
        assert!(refusal.message.contains("at most 100 `tag` parameters"), "{}", refusal.message);
        // Repeats count too, so that thousands of them cost no work beyond counting.
        let repeated = vec!["tag=t"; 7153].join("&");
        let target: Uri = format!("/v2/a/manifests/{DIGEST}?{repeated}").parse().unwrap();
        let Route::Refused(refusal) = classify(&Method::PUT, &target, &PassWrites::none()) else {
            panic!("not refused")
        };
        assert!(refusal.message.contains("this one has 7153"), "{}", refusal.message);
    }

    #[test]
    fn refusals_say_what_is_wrong_with_the_spelling() {
        let message = |target: &str| match classify(
            &Method::PUT,
            &target.parse().unwrap(),
            &PassWrites::none(),
        ) {
            Route::Refused(refusal) => refusal.message,
            other => panic!("{target}: {other:?}"),
        };
        assert!(message("/v2/team%2Fapp/manifests/1").contains("percent-encoding"));
        assert!(message("/v2/team/./app/manifests/1").contains("`.` or `..` segment"));
        assert!(message("/v2//app/manifests/1").contains("empty segment"));
        assert!(message("/v2/app;x/manifests/1").contains("the character `;`"));
        assert!(message("/V2/app/manifests/1").contains("another case"));
        assert!(message("/v2/app/manifests/1/").contains("trailing `/`"));
        let unknown = message("/api/v1/x");
        assert!(
            unknown.contains("`PUT /api/v1/x`") && unknown.contains("pass_writes"),
            "{unknown}"
        );
    }

    #[test]
    fn override_and_forwarded_headers_are_removed_in_every_spelling() {
        let mut headers = HeaderMap::new();
        for name in [
            "x-original-url",
            "x_http_method_override",
            "x-forwarded-uri",
            "x-envoy-original-path",
            "x_forwarded_method",
            "accept",
        ] {
            headers.insert(http::HeaderName::from_static(name), "x".parse().unwrap());
        }
        assert_eq!(strip_overrides(&mut headers), 5);
        assert_eq!(headers.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["accept"]);

        for name in ["forwarded", "x-forwarded-proto", "x_forwarded_host", "x-forwarded-for"] {
            headers.insert(http::HeaderName::from_static(name), "x".parse().unwrap());
        }
        strip_forwarded(&mut headers);
        assert_eq!(headers.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["accept"]);
    }

    #[test]
    fn a_decided_write_carries_only_allowed_headers() {
        let mut client = HeaderMap::new();
        for (name, value) in [
            ("authorization", "Bearer t"),
            ("content-type", "application/vnd.oci.image.manifest.v1+json"),
            ("x-custom-rewrite", "/v2/other/manifests/1.0.0"),
            ("transfer-encoding", "chunked"),
            ("content-length", "999"),
        ] {
            client.insert(http::HeaderName::from_static(name), value.parse().unwrap());
        }
        let sent = decided_write_headers(&client);
        let mut names: Vec<&str> = sent.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(names, ["authorization", "content-type"]);
    }

    #[test]
    fn pass_writes_must_be_paths() {
        assert!(
            PassWrites::new(&["api/**".into()])
                .unwrap_err()
                .contains("[0]: `api/**` must start with `/`")
        );
        assert!(PassWrites::new(&["/a".into(), "/[".into()]).unwrap_err().starts_with("[1]: `/[`"));
        assert!(PassWrites::none().is_empty());
    }

    #[test]
    fn override_headers_are_removed() {
        let mut headers = HeaderMap::new();
        headers.insert("x-http-method-override", "DELETE".parse().unwrap());
        headers.insert("X-Original-URL", "/v2/a/manifests/x".parse().unwrap());
        headers.insert("accept", "*/*".parse().unwrap());
        assert_eq!(strip_overrides(&mut headers), 2);
        assert_eq!(headers.len(), 1);
    }
}
