//! A bounded load generator for the gate's load test (tests/load/run): C keep-alive
//! connections, each sending manifest requests back to back to its own repository for N
//! seconds; prints requests/s and latency percentiles as JSON.
//!
//! `loadgen URL METHOD SECONDS CONNECTIONS` with METHOD `HEAD` (manifest HEAD of
//! `load/app-<c>:latest`) or `PUT` (moves `latest` between the manifests in $MANIFEST_A and
//! $MANIFEST_B, so that every PUT is a decided tag move).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::time::{Duration, Instant};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, method, seconds, connections] = args.as_slice() else {
        eprintln!("usage: loadgen URL HEAD|PUT SECONDS CONNECTIONS");
        std::process::exit(2);
    };
    let authority = url.trim_start_matches("http://").trim_end_matches('/').to_string();
    let seconds: u64 = seconds.parse().expect("SECONDS: a number");
    let connections: usize = connections.parse().expect("CONNECTIONS: a number");
    let bodies = match method.as_str() {
        "PUT" => [std::env::var("MANIFEST_A"), std::env::var("MANIFEST_B")]
            .map(|m| Bytes::from(m.expect("PUT needs $MANIFEST_A and $MANIFEST_B"))),
        "HEAD" => [Bytes::new(), Bytes::new()],
        other => panic!("METHOD: `{other}`: use HEAD or PUT"),
    };
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for connection in 0..connections {
        let (authority, method, bodies) = (authority.clone(), method.clone(), bodies.clone());
        tasks.spawn(async move {
            let stream = tokio::net::TcpStream::connect(&authority).await.expect("connect");
            stream.set_nodelay(true).unwrap();
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .expect("handshake");
            tokio::spawn(conn);
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
