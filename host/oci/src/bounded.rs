//! Reads from a policy registry with every answer bounded before it is held. A registry the
//! operator follows may be hostile or broken: a manifest answer of hundreds of megabytes, a
//! token endpoint that never stops, an answer trickled a byte at a time, a redirect to another
//! scheme. Each read here is limited in bytes as it arrives (a declared length over the limit
//! is refused before any byte is read), in total time (not per read), and in redirects (at
//! most [`MAX_REDIRECTS`], only where they keep the scheme). The token dance (a `Bearer`
//! challenge answered with a token from the realm) is done here too, under the same bounds.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::Duration;

use reqwest::header::{ACCEPT, WWW_AUTHENTICATE};
use reqwest::{Response, StatusCode};

use crate::client::{Access, RegistryError};
use crate::credentials::Credentials;
use crate::reference::Reference;

/// Most redirects one read follows.
pub const MAX_REDIRECTS: usize = 5;
/// Most bytes of a token endpoint's answer.
pub const MAX_TOKEN_BYTES: u64 = 64 << 10;
/// Most bytes of an error answer kept for the message.
const MAX_ERROR_BYTES: u64 = 4 << 10;

/// A registry client for reads, bounded in bytes, time and redirects.
pub(crate) struct BoundedReader {
    http: reqwest::Client,
    insecure: Vec<String>,
    credentials: Credentials,
    /// Time one read may take from its first byte sent to its last byte read, token dance
    /// and redirects included.
    deadline: Duration,
    /// Bearer tokens by registry and repository.
    tokens: Mutex<HashMap<(String, String), String>>,
}

impl BoundedReader {
    pub(crate) fn new(access: &Access) -> Result<Self, RegistryError> {
        let roots = access
            .ca_certificates
            .iter()
            .map(|pem| reqwest::Certificate::from_pem(pem))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| RegistryError::Setup(format!("a CA certificate: {e}")))?;
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            let first_scheme = attempt.previous().first().map(|url| url.scheme().to_string());
            if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
            } else if first_scheme.as_deref() != Some(attempt.url().scheme()) {
                let to = attempt.url().scheme().to_string();
                attempt.error(format!("a redirect to `{to}` from another scheme"))
            } else {
                attempt.follow()
            }
        });
        let http = reqwest::Client::builder()
            .tls_certs_merge(roots)
            .connect_timeout(access.timeout)
            .redirect(redirects)
            .user_agent(concat!("tagpolicy/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RegistryError::Setup(e.to_string()))?;
        Ok(Self {
            http,
            insecure: access.insecure.clone(),
            credentials: access.credentials.clone(),
            deadline: access.timeout,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// `GET /v2/<repository>/<kind>/<reference>` of `reference`'s registry, at most `max`
    /// bytes; `None` when the registry answers 404.
    pub(crate) async fn get(
        &self,
        reference: &Reference,
        kind: &str,
        target: &str,
        accept: &[&str],
        max: u64,
    ) -> Result<Option<Vec<u8>>, RegistryError> {
        let name = format!("{}/{kind}/{target}", reference.name());
        let path = format!("/v2/{}/{kind}/{target}", reference.repository());
        let read = self.get_within(reference, &path, accept, max, &name);
        match tokio::time::timeout(self.deadline, read).await {
            Ok(result) => result,
            Err(_) => Err(RegistryError::Unreachable {
                reference: name,
                detail: format!("the read did not finish within {:?} (all of it)", self.deadline),
            }),
        }
    }

    /// [`BoundedReader::get`] of `path`, without its deadline; `name` is for errors.
    async fn get_within(
        &self,
        reference: &Reference,
        path: &str,
        accept: &[&str],
        max: u64,
        name: &str,
    ) -> Result<Option<Vec<u8>>, RegistryError> {
        let host = registry_host(reference);
        let scheme = if self.insecure.contains(&host) { "http" } else { "https" };
        let url = format!("{scheme}://{host}{path}");
        let key = (host.clone(), reference.repository().to_string());
        let mut answered_challenge = false;
        loop {
            let mut request = self.http.get(&url).header(ACCEPT, accept.join(", "));
            let token = self.tokens.lock().get(&key).cloned();
            if let Some(token) = &token {
                request = request.bearer_auth(token);
            } else if answered_challenge {
                request = self.basic(request, reference)?;
            }
            let response = request.send().await.map_err(|e| unreachable(name, &e))?;
            match response.status() {
                StatusCode::OK => {
                    return read_bounded(response, max, name, "the answer").await.map(Some);
                }
                StatusCode::NOT_FOUND => return Ok(None),
                StatusCode::UNAUTHORIZED if !answered_challenge => {
                    answered_challenge = true;
                    let challenge = response
                        .headers()
                        .get(WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    if let Some(bearer) = challenge.strip_prefix("Bearer ") {
                        let token = self.token(reference, scheme, bearer, name).await?;
                        self.tokens.lock().insert(key.clone(), token);
                    } else {
                        self.tokens.lock().remove(&key);
                    }
                }
                status => return Err(refused(name, status, response).await),
            }
        }
    }

    fn basic(
        &self,
        request: reqwest::RequestBuilder,
        reference: &Reference,
    ) -> Result<reqwest::RequestBuilder, RegistryError> {
        Ok(match self.credentials.lookup(reference.registry(), reference.repository())? {
            Some(credential) => request.basic_auth(credential.username, Some(credential.password)),
            None => request,
        })
    }

    /// A pull token from the realm of a `Bearer` challenge, read within [`MAX_TOKEN_BYTES`].
    async fn token(
        &self,
        reference: &Reference,
        registry_scheme: &str,
        challenge: &str,
        name: &str,
    ) -> Result<String, RegistryError> {
        let parameters = challenge_parameters(challenge);
        let realm = parameters.get("realm").cloned().unwrap_or_default();
        let url = reqwest::Url::parse(&realm).map_err(|_| RegistryError::Registry {
            reference: name.to_string(),
            detail: format!("the token realm `{realm}` is not a URL"),
        })?;
        // Credentials go to the realm only over TLS, unless the registry itself is plain.
        if url.scheme() != "https" && registry_scheme == "https" {
            return Err(RegistryError::Registry {
                reference: name.to_string(),
                detail: format!("the token realm `{realm}` is not https"),
            });
        }
        let scope = format!("repository:{}:pull", reference.repository());
        let mut query: Vec<(&str, &str)> = vec![("scope", &scope)];
        if let Some(service) = parameters.get("service") {
            query.push(("service", service));
        }
        let request = self.basic(self.http.get(url).query(&query), reference)?;
        let response = request.send().await.map_err(|e| unreachable(name, &e))?;
        if !response.status().is_success() {
            let status = response.status();
            let detail = format!("the token endpoint answered {status}");
            return Err(match status.as_u16() {
                401 | 403 => RegistryError::Unauthorized { reference: name.to_string(), detail },
                _ => RegistryError::Registry { reference: name.to_string(), detail },
            });
        }
        let body = read_bounded(response, MAX_TOKEN_BYTES, name, "the token answer").await?;
        let answer: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| RegistryError::Registry {
                reference: name.to_string(),
                detail: format!("the token answer is not JSON: {e}"),
            })?;
        answer
            .get("token")
            .or_else(|| answer.get("access_token"))
            .and_then(|t| t.as_str())
            .map(String::from)
            .ok_or_else(|| RegistryError::Registry {
                reference: name.to_string(),
                detail: "the token answer has no `token`".into(),
            })
    }
}

/// `host[:port]` requests go to (Docker Hub's API lives at another name than its images').
fn registry_host(reference: &Reference) -> String {
    match reference.registry() {
        "docker.io" => "registry-1.docker.io".to_string(),
        other => other.to_string(),
    }
}

/// `realm="…",service="…"` as a map (quoted values, as registries send them).
fn challenge_parameters(challenge: &str) -> HashMap<String, String> {
    let mut parameters = HashMap::new();
    let mut rest = challenge.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let (value, remaining) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.split_once('"') {
                Some((value, remaining)) => (value, remaining),
                None => (quoted, ""),
            },
            None => after.split_once(',').unwrap_or((after, "")),
        };
        parameters.insert(key, value.to_string());
        rest = remaining.trim_start_matches(',');
    }
    parameters
}

/// The body of `response`, refused as soon as it is known to pass `max` bytes: by its
/// declared length before any byte is read, or as it arrives.
async fn read_bounded(
    mut response: Response,
    max: u64,
    name: &str,
    what: &'static str,
) -> Result<Vec<u8>, RegistryError> {
    let too_large =
        |size: u64| RegistryError::TooLarge { reference: name.to_string(), what, size, max };
    if let Some(declared) = response.content_length()
        && declared > max
    {
        return Err(too_large(declared));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| unreachable(name, &e))? {
        let size = body.len() as u64 + chunk.len() as u64;
        if size > max {
            return Err(too_large(size));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A registry's refusal, with the start of its error body.
async fn refused(name: &str, status: StatusCode, response: Response) -> RegistryError {
    let detail = match read_bounded(response, MAX_ERROR_BYTES, name, "the error").await {
        Ok(body) => format!("{status}: {}", String::from_utf8_lossy(&body).trim()),
        Err(_) => format!("{status}"),
    };
    let reference = name.to_string();
    match status.as_u16() {
        401 | 403 => RegistryError::Unauthorized { reference, detail },
        429 | 500..=599 => RegistryError::Unreachable { reference, detail },
        _ => RegistryError::Registry { reference, detail },
    }
}

fn unreachable(name: &str, error: &reqwest::Error) -> RegistryError {
    let mut detail = crate::client::chain(error);
    if detail.contains("InvalidContentType") {
        // What rustls says when the other side answers TLS with plain HTTP.
        detail.push_str(
            " (the registry seems to speak plain HTTP: list it as insecure if that is intended)",
        );
    }
    if error.is_redirect() {
        return RegistryError::Registry { reference: name.to_string(), detail };
    }
    RegistryError::Unreachable { reference: name.to_string(), detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_read_with_quoted_values() {
        let parameters = challenge_parameters(
            r#"realm="https://auth.example/token",service="registry.example",scope="repository:a:pull""#,
        );
        assert_eq!(parameters["realm"], "https://auth.example/token");
        assert_eq!(parameters["service"], "registry.example");
        assert_eq!(parameters["scope"], "repository:a:pull");
    }
}

/// A hostile registry on 127.0.0.1: each request gets what `answer` writes for its target;
/// the registry counts requests.
#[cfg(test)]
mod hostile {
    use crate::client::{Access, RegistryClient, RegistryError};
    use crate::reference::Reference;
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};
    use tagpolicy::Digest;

    type Answer = fn(&str, &mut TcpStream, &str) -> std::io::Result<()>;

    fn serve(answer: Answer) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(AtomicUsize::new(0));
        let (count, here) = (requests.clone(), address.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (count, here) = (count.clone(), here.clone());
                std::thread::spawn(move || {
                    let mut stream = stream;
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    // Every request of the connection, as a registry keeps it alive: a client
                    // that reuses it for the next request (a redirect's) must be answered, not
                    // reset by a close it could not foresee.
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let target = line.split(' ').nth(1).unwrap_or_default().to_string();
                        // The rest of the head.
                        loop {
                            let mut header = String::new();
                            if reader.read_line(&mut header).unwrap_or(0) <= 2 {
                                break;
                            }
                        }
                        count.fetch_add(1, Ordering::SeqCst);
                        if answer(&target, &mut stream, &here).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (address, requests)
    }

    /// Endless zeros in chunks of 64 KiB, until the client goes away.
    fn endless(stream: &mut TcpStream) -> std::io::Result<()> {
        let chunk = vec![b'0'; 64 << 10];
        loop {
            write!(stream, "{:x}\r\n", chunk.len())?;
            stream.write_all(&chunk)?;
            stream.write_all(b"\r\n")?;
        }
    }

    fn read(address: &str, timeout: Duration) -> (Result<Digest, RegistryError>, Duration) {
        let access = Access { insecure: vec![address.to_string()], timeout, ..Access::default() };
        let client = RegistryClient::new(&access).unwrap();
        let reference = Reference::parse(&format!("oci://{address}/policies/floor:1.0.0")).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let started = Instant::now();
        let result = runtime.block_on(client.resolve(&reference));
        (result, started.elapsed())
    }

    #[test]
    fn a_declared_400_mib_manifest_is_refused_before_a_byte_is_read() {
        let (address, _) = serve(|_, stream, _| {
            write!(stream, "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", 400u64 << 20)?;
            endless(stream)
        });
        let (result, _) = read(&address, Duration::from_secs(10));
        let error = result.unwrap_err().to_string();
        assert!(error.contains("419430400 bytes, more than the 4194304 allowed"), "{error}");
    }

    #[test]
    fn an_endless_manifest_is_cut_off_at_the_limit() {
        let (address, _) = serve(|_, stream, _| {
            write!(stream, "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")?;
            endless(stream)
        });
        let (result, _) = read(&address, Duration::from_secs(10));
        let error = result.unwrap_err();
        assert!(
            matches!(error, RegistryError::TooLarge { size, max, .. } if size > max && size <= max + (64 << 10)),
            "{error}"
        );
    }

    #[test]
    fn an_answer_trickled_a_byte_at_a_time_ends_at_the_total_deadline() {
        let (address, _) = serve(|_, stream, _| {
            write!(stream, "HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")?;
            loop {
                stream.write_all(b"{")?;
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        let (result, took) = read(&address, Duration::from_secs(2));
        let error = result.unwrap_err();
        assert!(error.is_unreachable(), "{error}");
        assert!(error.to_string().contains("did not finish within 2s"), "{error}");
        assert!(took < Duration::from_secs(2) + Duration::from_secs(5), "{took:?}");
    }

    #[test]
    fn a_token_endpoint_that_never_stops_is_cut_off() {
        let (address, _) = serve(|target, stream, here| {
            if target.starts_with("/token") {
                write!(stream, "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")?;
                return endless(stream);
            }
            let challenge = format!(r#"Bearer realm="http://{here}/token",service="hostile""#);
            let body = r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#;
            write!(
                stream,
                "HTTP/1.1 401 Unauthorized\r\nwww-authenticate: {challenge}\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
        });
        let (result, _) = read(&address, Duration::from_secs(10));
        let error = result.unwrap_err().to_string();
        assert!(
            error.contains("the token answer is") && error.contains("more than the 65536"),
            "{error}"
        );
    }

    #[test]
    fn redirects_keep_the_scheme_and_are_counted() {
        let (address, requests) = serve(|target, stream, here| {
            let location = match target {
                t if t.contains("to-https") => format!("https://{here}/elsewhere"),
                t => format!("http://{here}{t}/again"),
            };
            write!(
                stream,
                "HTTP/1.1 307 Temporary Redirect\r\nlocation: {location}\r\ncontent-length: 0\r\n\r\n"
            )
        });
        let (result, _) = read(&address, Duration::from_secs(10));
        let error = result.unwrap_err().to_string();
        assert!(error.contains("more than 5 redirects"), "{error}");
        assert!(
            requests.load(Ordering::SeqCst) <= 6,
            "{} requests",
            requests.load(Ordering::SeqCst)
        );

        let access = Access { insecure: vec![address.clone()], ..Access::default() };
        let client = RegistryClient::new(&access).unwrap();
        let reference = Reference::parse(&format!("oci://{address}/to-https/floor:1.0.0")).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let error = runtime.block_on(client.resolve(&reference)).unwrap_err().to_string();
        assert!(error.contains("a redirect to `https` from another scheme"), "{error}");
    }
}
