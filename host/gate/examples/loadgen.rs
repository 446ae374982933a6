//! A bounded load generator for the gate's load test (tests/load/run): C keep-alive
//! connections, each sending manifest requests back to back to its own repository for N
//! seconds; prints requests/s and latency percentiles as JSON.
//!
//! `loadgen URL METHOD SECONDS CONNECTIONS` with METHOD `HEAD` or `GET` (of the manifest
//! `load/app-<c>:latest`) or `PUT` (moves `latest` between the manifests in $MANIFEST_A and
//! $MANIFEST_B, so that every PUT is a decided tag move). An `https://` URL is spoken to
//! over TLS (HTTP/1.1), trusting the CA in the PEM file $LOADGEN_CA.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::time::{Duration, Instant};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, method, seconds, connections] = args.as_slice() else {
        eprintln!("usage: loadgen URL HEAD|GET|PUT SECONDS CONNECTIONS");
        std::process::exit(2);
    };
    let tls = url.starts_with("https://").then(tls_connector);
    let authority = url
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let seconds: u64 = seconds.parse().expect("SECONDS: a number");
    let connections: usize = connections.parse().expect("CONNECTIONS: a number");
    let bodies = match method.as_str() {
        "PUT" => [std::env::var("MANIFEST_A"), std::env::var("MANIFEST_B")]
            .map(|m| Bytes::from(m.expect("PUT needs $MANIFEST_A and $MANIFEST_B"))),
        "HEAD" | "GET" => [Bytes::new(), Bytes::new()],
        other => panic!("METHOD: `{other}`: use HEAD, GET or PUT"),
    };
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for connection in 0..connections {
        let (authority, method, bodies) = (authority.clone(), method.clone(), bodies.clone());
        let tls = tls.clone();
        tasks.spawn(async move {
            let stream = tokio::net::TcpStream::connect(&authority).await.expect("connect");
            stream.set_nodelay(true).unwrap();
            let mut sender = match tls {
                None => {
                    let (sender, conn) =
                        http1::handshake(TokioIo::new(stream)).await.expect("handshake");
                    tokio::spawn(conn);
                    sender
                }
                Some(connector) => {
                    let host = authority.rsplit_once(':').map_or(authority.as_str(), |(h, _)| h);
                    let name = rustls::pki_types::ServerName::try_from(host.to_string())
                        .expect("a host name or IP address");
                    let stream = connector.connect(name, stream).await.expect("TLS handshake");
                    let (sender, conn) =
                        http1::handshake(TokioIo::new(stream)).await.expect("handshake");
                    tokio::spawn(conn);
                    sender
                }
            };
            let path = format!("/v2/load/app-{connection}/manifests/latest");
            let (mut latencies, mut errors, mut n) = (Vec::new(), 0usize, 0usize);
            while Instant::now() < until {
                n += 1;
                let request = Request::builder()
                    .method(method.as_str())
                    .uri(&path)
                    .header("host", &authority)
                    .header("content-type", "application/vnd.oci.image.manifest.v1+json")
                    .header("accept", "application/vnd.oci.image.manifest.v1+json")
                    .body(Full::new(bodies[n % 2].clone()))
                    .unwrap();
                let started = Instant::now();
                let response = sender.send_request(request).await.expect("request");
                let ok = response.status().is_success();
                response.into_body().collect().await.expect("body");
                latencies.push(started.elapsed());
                errors += usize::from(!ok);
            }
            (latencies, errors)
        });
    }
    let (mut latencies, mut errors) = (Vec::new(), 0);
    while let Some(done) = tasks.join_next().await {
        let (l, e) = done.unwrap();
        latencies.extend(l);
        errors += e;
    }
    latencies.sort();
    let percentile = |p: f64| {
        let index = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[index].as_secs_f64() * 1000.0
    };
    println!(
        "{{\"requests\":{},\"errors\":{errors},\"requests_per_second\":{:.0},\"p50_ms\":{:.3},\"p99_ms\":{:.3}}}",
        latencies.len(),
        latencies.len() as f64 / seconds as f64,
        percentile(0.50),
        percentile(0.99)
    );
}

/// A TLS connector that trusts only the CA in $LOADGEN_CA.
fn tls_connector() -> tokio_rustls::TlsConnector {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let path = std::env::var("LOADGEN_CA").expect("an https URL needs $LOADGEN_CA (a PEM file)");
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(&path).expect("$LOADGEN_CA: a PEM file") {
        roots.add(certificate.expect("a PEM certificate")).expect("a CA certificate");
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}
