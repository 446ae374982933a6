//! Where the registry's answers send the client (`Location`): a URL on the registry's own
//! origin is moved to the origin the client used, so that the client follows it through the
//! gate; anything else (a relative path, a URL on the gate's origin, a storage redirect
//! elsewhere) is passed on as the registry sent it.
//!
//! CNCF distribution builds its URLs from the request's `Host` and `X-Forwarded-Proto`,
//! which the gate passes on, so its `Location`s already name the gate; a registry configured
//! with a fixed address of its own (distribution's `http.host`, a registry behind a proxy it
//! knows) names itself, and a client that followed that would bypass the gate or not reach
//! the registry at all.

use http::header::{HOST, HeaderMap, HeaderName, HeaderValue, LOCATION};
use http::uri::{Authority, Uri};

const FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// What a request's headers say of the origin the client sent it to, kept until an answer's
/// `Location` needs it: most answers have none, so the origin is worked out only then.
pub(super) struct ClientOrigin {
    proto: Option<HeaderValue>,
    forwarded_host: Option<HeaderValue>,
    host: Option<HeaderValue>,
}

impl ClientOrigin {
    /// The headers as the gate has them after normalising (a header value is a shared
    /// buffer, so keeping one copies nothing).
    pub(super) fn of(headers: &HeaderMap) -> ClientOrigin {
        ClientOrigin {
            proto: headers.get(FORWARDED_PROTO).cloned(),
            forwarded_host: headers.get(FORWARDED_HOST).cloned(),
            host: headers.get(HOST).cloned(),
        }
    }

    /// The origin (`scheme://authority`): `X-Forwarded-Proto` (set by the gate, or a proxy
    /// it trusts) and `X-Forwarded-Host` (only a trusted proxy's is left) or else `Host`.
    /// `None` if they do not say, or say something that is not an origin.
    pub(super) fn resolve(&self) -> Option<String> {
        let first = |value: &Option<HeaderValue>| {
            let value = value.as_ref()?.to_str().ok()?;
            Some(value.split(',').next()?.trim().to_string())
        };
        let scheme = first(&self.proto)?.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        let host = first(&self.forwarded_host).or_else(|| first(&self.host))?;
        let authority: Authority = host.parse().ok()?;
        // A host only: no `user@` part, which a URL built from it would carry.
        if authority.as_str().contains('@') {
            return None;
        }
        Some(format!("{scheme}://{authority}"))
    }
}

/// Move each `Location` in `headers` that points at `upstream`'s origin to `client` (the
/// client's origin), or, if the client's origin is not known, to the bare path, which the
/// client resolves against the gate it asked.
pub(super) fn follow_through(headers: &mut HeaderMap, upstream: &Uri, client: Option<&str>) {
    let values: Vec<HeaderValue> = headers.get_all(LOCATION).iter().cloned().collect();
    if !values.iter().any(|value| on_origin(value, upstream).is_some()) {
        return;
    }
    headers.remove(LOCATION);
    for value in values {
        let moved = on_origin(&value, upstream).and_then(|path| {
            HeaderValue::from_str(&format!("{}{path}", client.unwrap_or(""))).ok()
        });
        headers.append(LOCATION, moved.unwrap_or(value));
    }
}

/// The path and query of `location` if it is an absolute URL on `upstream`'s origin (scheme,
/// host and port, the default port of the scheme when none is written).
fn on_origin(location: &HeaderValue, upstream: &Uri) -> Option<String> {
    let location: Uri = location.to_str().ok()?.parse().ok()?;
    let same = |a: Option<&str>, b: Option<&str>| match (a, b) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => false,
    };
    let port = |uri: &Uri| {
        uri.port_u16().or(match uri.scheme_str()?.to_ascii_lowercase().as_str() {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        })
    };
    let same_origin = same(location.scheme_str(), upstream.scheme_str())
        && same(location.host(), upstream.host())
        && port(&location) == port(upstream)
        && port(upstream).is_some();
    same_origin.then(|| location.path_and_query().map_or("/", |p| p.as_str()).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moved(locations: &[&str], upstream: &str, client: Option<&str>) -> Vec<String> {
        let mut headers = HeaderMap::new();
        for location in locations {
            headers.append(LOCATION, HeaderValue::from_str(location).unwrap());
        }
        headers.insert("docker-content-digest", HeaderValue::from_static("sha256:1"));
        follow_through(&mut headers, &upstream.parse().unwrap(), client);
        assert_eq!(headers["docker-content-digest"], "sha256:1");
        headers.get_all(LOCATION).iter().map(|v| v.to_str().unwrap().to_string()).collect()
    }

    #[test]
    fn a_location_on_the_registrys_origin_goes_through_the_gate() {
        let gate = Some("https://gate.example:5000");
        let path = "/v2/team/app/manifests/sha256:ab?x=1";
        for upstream in ["http://registry:5000", "HTTP://Registry:5000/"] {
            assert_eq!(
                moved(&[&format!("http://registry:5000{path}")], upstream, gate),
                [format!("https://gate.example:5000{path}")],
                "{upstream}"
            );
        }
        // The default port, written or not, is the same origin.
        assert_eq!(
            moved(&["https://registry/v2/"], "https://registry:443", gate),
            ["https://gate.example:5000/v2/"]
        );
        // Not knowing the client's origin, the path: the client resolves it against the gate.
        assert_eq!(
            moved(&[&format!("http://registry:5000{path}")], "http://registry:5000", None),
            [path]
        );
    }

    #[test]
    fn any_other_location_is_passed_on_as_sent() {
        let gate = Some("http://gate:5000");
        for location in [
            "/v2/team/app/manifests/sha256:ab",
            "http://gate:5000/v2/team/app/blobs/uploads/1",
            "https://registry:5000/v2/",
            "http://registry:5001/v2/",
            "http://other:5000/v2/",
            "https://bucket.s3.example/blob?signature=x",
        ] {
            assert_eq!(moved(&[location], "http://registry:5000", gate), [location]);
        }
    }

    #[test]
    fn the_client_origin_is_what_the_gate_knows_of_the_request() {
        let origin = |pairs: &[(&'static str, &'static str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.append(*name, HeaderValue::from_static(value));
            }
            ClientOrigin::of(&headers).resolve()
        };
        let host = ("host", "gate:5000");
        assert_eq!(origin(&[host, ("x-forwarded-proto", "http")]).unwrap(), "http://gate:5000");
        assert_eq!(
            origin(&[host, ("x-forwarded-proto", "HTTPS, http"), ("x-forwarded-host", "front")])
                .unwrap(),
            "https://front"
        );
        assert_eq!(origin(&[host]), None, "no scheme");
        assert_eq!(origin(&[("x-forwarded-proto", "http")]), None, "no host");
        assert_eq!(origin(&[host, ("x-forwarded-proto", "ftp")]), None);
        assert_eq!(origin(&[("host", "user@gate"), ("x-forwarded-proto", "http")]), None);
        assert_eq!(origin(&[("host", "gate/x"), ("x-forwarded-proto", "http")]), None);
    }
}
