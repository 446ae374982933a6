//! A stand-in upstream registry on 127.0.0.1 whose answers a test scripts, for behaviour the
//! real registry cannot be made to show (a failing tag write, a write that never answers).
#![allow(dead_code)]

use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming};
use std::sync::{Arc, Mutex};

/// What the stand-in does with one request.
pub enum Answer {
    Reply {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    /// Keep the connection open and never answer.
    Hang,
    /// Answer what the test sends later; if it drops the sender instead, close the
    /// connection without an answer (a write the upstream never applied).
    Later(tokio::sync::oneshot::Receiver<Answer>),
}

impl Answer {
    pub fn status(status: u16) -> Answer {
        Answer::Reply { status, headers: Vec::new(), body: Vec::new() }
    }
}

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

type Script = dyn Fn(&Seen) -> Answer + Send + Sync;

/// Start the stand-in; returns its URL and every request it has received.
pub fn start(
    script: impl Fn(&Seen) -> Answer + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let script: Arc<Script> = Arc::new(script);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let log = seen.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (log, script) = (log.clone(), script.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let (log, script) = (log.clone(), script.clone());
                        async move { answer(request, &log, &*script).await }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
    });
    (format!("http://{address}"), seen)
}

async fn answer(
    request: Request<Incoming>,
    log: &Mutex<Vec<Seen>>,
    script: &Script,
) -> Result<Response<Full<bytes::Bytes>>, std::io::Error> {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or_default().to_string();
    let headers = request.headers().clone();
    // A body the sender gave up on ends the exchange, as it would at a registry.
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes().to_vec(),
        Err(error) => return Err(std::io::Error::other(error)),
    };
    let seen = Seen { method, path, query, headers, body };
    let mut answer = script(&seen);
    log.lock().unwrap().push(seen);
    loop {
        match answer {
            Answer::Hang => std::future::pending::<()>().await,
            Answer::Later(later) => match later.await {
                Ok(next) => answer = next,
                // An error from the service makes hyper close the connection unanswered.
                Err(_) => return Err(std::io::Error::other("dropped without an answer")),
            },
            Answer::Reply { status, headers, body } => {
                let mut response = Response::builder().status(status);
                for (name, value) in headers {
                    response = response.header(name, value);
                }
                return Ok(response.body(Full::new(body.into())).unwrap());
            }
        }
    }
}
