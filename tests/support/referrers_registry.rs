//! A stand-in for a registry with the OCI referrers API, in front of a real docker-registry
//! (CNCF distribution 2.8 has none): it passes every request through unchanged (the `Host`
//! header included, so upload locations point back at it), remembers the manifests PUT with
//! a `subject`, adds `OCI-Subject: <subject digest>` to the registry's 201 for them, and
//! answers `GET /v2/<name>/referrers/<digest>` itself (an OCI image index of their
//! descriptors, with the `artifactType` filter and `OCI-Filters-Applied`). Bounded: bodies of
//! at most [`MAX_BODY`] bytes, at most [`MAX_REFERRERS`] referrers remembered; a manifest
//! deleted later stays listed (the tests that use it delete none).
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, Response, StatusCode, body::Incoming};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const MAX_BODY: usize = 16 << 20;
pub const MAX_REFERRERS: usize = 1000;
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// (repository, subject digest) → the descriptors of the manifests that name it.
type Referrers = HashMap<(String, String), Vec<serde_json::Value>>;

pub struct ReferrersRegistry {
    pub url: String,
    referrers: Arc<Mutex<Referrers>>,
}

impl ReferrersRegistry {
    /// Start it on a free port of 127.0.0.1 in front of `upstream` (`http://host:port`).
    pub fn start(upstream: &str) -> ReferrersRegistry {
        let upstream = upstream.strip_prefix("http://").expect("a plain HTTP upstream").to_string();
        let referrers = Arc::new(Mutex::new(Referrers::new()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let state = (Arc::new(upstream), referrers.clone());
        std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((stream, _)) = listener.accept().await else { continue };
                    let (upstream, referrers) = state.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            let (upstream, referrers) = (upstream.clone(), referrers.clone());
                            async move { answer(request, &upstream, &referrers).await }
                        });
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(io, service)
                            .await;
                    });
                }
            });
        });
        ReferrersRegistry { url, referrers }
    }

    /// How many referrers of `subject` in `repository` it has listed.
    pub fn referrers_of(&self, repository: &str, subject: &str) -> usize {
        let key = (repository.to_string(), subject.to_string());
        self.referrers.lock().unwrap().get(&key).map_or(0, Vec::len)
    }
}

type Answer = Result<Response<Full<Bytes>>, std::io::Error>;

fn reply(status: StatusCode, headers: &[(&str, &str)], body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(*name, *value);
    }
    response.body(Full::new(body.into())).unwrap()
}

async fn answer(
    request: Request<Incoming>,
    upstream: &str,
    referrers: &Mutex<Referrers>,
) -> Answer {
    let (mut parts, body) = request.into_parts();
    let body = whole(body).await?;
    let path = parts.uri.path().to_string();
    if let Some((repository, subject)) = referrers_route(&path)
        && (parts.method == hyper::Method::GET || parts.method == hyper::Method::HEAD)
    {
        let filter = artifact_type_filter(parts.uri.query());
        return Ok(list(referrers, repository, subject, filter.as_deref()));
    }
    let pushed = (parts.method == hyper::Method::PUT)
        .then(|| manifest_route(&path))
        .flatten()
        .and_then(|repository| Some((repository, with_subject(&body)?)));
    if pushed.is_some()
        && referrers.lock().unwrap().values().map(Vec::len).sum::<usize>() >= MAX_REFERRERS
    {
        return Ok(reply(StatusCode::INSUFFICIENT_STORAGE, &[], b"stand-in full".to_vec()));
    }
    // The body is whole now: send it with its length, whatever framing the client used.
    parts.headers.remove(hyper::header::TRANSFER_ENCODING);
    parts.headers.insert(hyper::header::CONTENT_LENGTH, body.len().into());
    let mut response = forward(upstream, Request::from_parts(parts, Full::new(body))).await?;
    if let Some((repository, (subject, descriptor))) = pushed
        && response.status() == StatusCode::CREATED
    {
        let key = (repository.to_string(), subject.clone());
        let mut referrers = referrers.lock().unwrap();
        let listed = referrers.entry(key).or_default();
        if !listed.iter().any(|d| d["digest"] == descriptor["digest"]) {
            listed.push(descriptor);
        }
        // A subject no header can carry is listed but not named.
        if let Ok(value) = subject.parse() {
            response.headers_mut().insert("OCI-Subject", value);
        }
    }
    Ok(response)
}

/// Send `request` to `upstream` over a new connection and read the answer whole.
async fn forward(upstream: &str, request: Request<Full<Bytes>>) -> Answer {
    let stream = tokio::net::TcpStream::connect(upstream).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
    tokio::spawn(connection);
    let response = sender.send_request(request).await.map_err(std::io::Error::other)?;
    let (mut parts, body) = response.into_parts();
    let body = whole(body).await?;
    parts.headers.remove(hyper::header::TRANSFER_ENCODING);
    Ok(Response::from_parts(parts, Full::new(body)))
}

/// A request's or an answer's body, read whole up to [`MAX_BODY`] bytes.
async fn whole(body: Incoming) -> Result<Bytes, std::io::Error> {
    let collected = Limited::new(body, MAX_BODY).collect().await;
    Ok(collected.map_err(|e| std::io::Error::other(e.to_string()))?.to_bytes())
}

/// `/v2/<name>/referrers/<digest>` → (name, digest).
fn referrers_route(path: &str) -> Option<(&str, &str)> {
    let (name, digest) = path.strip_prefix("/v2/")?.rsplit_once("/referrers/")?;
    (!name.is_empty() && digest.starts_with("sha256:")).then_some((name, digest))
}

/// `/v2/<name>/manifests/<reference>` → name.
fn manifest_route(path: &str) -> Option<&str> {
    let (name, _) = path.strip_prefix("/v2/")?.rsplit_once("/manifests/")?;
    (!name.is_empty()).then_some(name)
}

fn artifact_type_filter(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(name, _)| name == "artifactType")
        .map(|(_, value)| value.into_owned())
}

/// A manifest that names a subject: the subject's digest and the manifest's descriptor as
/// the referrers API lists it (its `artifactType`, else its config's media type).
fn with_subject(body: &[u8]) -> Option<(String, serde_json::Value)> {
    let manifest: serde_json::Value = serde_json::from_slice(body).ok()?;
    let subject = manifest["subject"]["digest"].as_str()?.to_string();
    let artifact_type = manifest["artifactType"]
        .as_str()
        .or_else(|| manifest["config"]["mediaType"].as_str())
        .unwrap_or_default();
    use sha2::Digest;
    let mut descriptor = serde_json::json!({
        "mediaType": manifest["mediaType"].as_str().unwrap_or(MANIFEST),
        "digest": format!("sha256:{:x}", sha2::Sha256::digest(body)),
        "size": body.len(),
        "artifactType": artifact_type,
    });
    if manifest["annotations"].is_object() {
        descriptor["annotations"] = manifest["annotations"].clone();
    }
    Some((subject, descriptor))
}

fn list(
    referrers: &Mutex<Referrers>,
    repository: &str,
    subject: &str,
    filter: Option<&str>,
) -> Response<Full<Bytes>> {
    let key = (repository.to_string(), subject.to_string());
    let manifests: Vec<serde_json::Value> = referrers
        .lock()
        .unwrap()
        .get(&key)
        .into_iter()
        .flatten()
        .filter(|d| filter.is_none_or(|wanted| d["artifactType"] == wanted))
        .cloned()
        .collect();
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests});
    let mut headers = vec![("Content-Type", INDEX)];
    if filter.is_some() {
        headers.push(("OCI-Filters-Applied", "artifactType"));
    }
    reply(StatusCode::OK, &headers, index.to_string().into_bytes())
}
