//! Streams that stop moving. The gate passes blob uploads and downloads through without
//! reading them, so a client (or an upstream) that sends a few bytes and then nothing, or a
//! client that never reads its answer, would hold a connection slot for ever. Two guards
//! bound that with `limits.idle_timeout`: a pass-through body that yields no frame for that
//! long ends with an error, and a client socket that accepts no written byte for that long is
//! closed. A request the gate is still working on (a slow upstream) is not idle: only a body
//! that is being read, or a write that is waiting, counts.

use super::metrics::Metrics;
use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use parking_lot::Mutex;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long a stream has waited, and the timer that ends the wait at `limit`. Streams move
/// in many small steps, so a step costs at most a clock reading: the timer is created once,
/// and moved (to the current wait's end) only when it fires early.
struct Wait {
    limit: Duration,
    /// Since when the stream has been waiting; `None` while it moves.
    since: Option<tokio::time::Instant>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Wait {
    fn new(limit: Duration) -> Self {
        Wait { limit, since: None, timer: None }
    }

    fn moved(&mut self) {
        self.since = None;
    }

    /// The stream is waiting: whether it has waited `limit` (else `cx` is woken when it
    /// may have).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let since = *self.since.get_or_insert_with(tokio::time::Instant::now);
        let end = since + self.limit;
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(end)));
        loop {
            if timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            if timer.deadline() >= end {
                self.since = None;
                return true;
            }
            // Set for an earlier wait: move it to this one's end, and poll it again so that
            // it wakes `cx`.
            timer.as_mut().reset(end);
        }
    }
}

/// A body between two parties that ends with [`Idle`] when no frame arrives for `limit`
/// while it is being read.
pub struct IdleBody<B> {
    inner: B,
    wait: Wait,
    metrics: Arc<Metrics>,
    /// The `phase` label of the timeout metric: whose body it is.
    phase: &'static str,
}

/// A pass-through body moved no byte for the idle timeout.
#[derive(Debug, thiserror::Error)]
#[error("no byte of the body arrived for {0:?} (limits.idle_timeout)")]
pub struct Idle(pub Duration);

impl<B> IdleBody<B> {
    pub fn new(inner: B, limit: Duration, metrics: Arc<Metrics>, phase: &'static str) -> Self {
        IdleBody { inner, wait: Wait::new(limit), metrics, phase }
    }
}

impl<B> Body for IdleBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.wait.moved();
                Poll::Ready(frame.map(|frame| frame.map_err(Into::into)))
            }
            Poll::Pending => {
                if this.wait.expired(cx) {
                    let limit = this.wait.limit;
                    this.metrics.timeout(this.phase);
                    tracing::info!(phase = this.phase, ?limit, "closed a body that stopped moving");
                    return Poll::Ready(Some(Err(Box::new(Idle(limit)))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A client socket whose writes fail with `TimedOut` once one has waited `limit` for the
/// client to take a byte: the client stopped reading, and the connection (with its slot) is
/// closed. Reads are left alone; the header and body timeouts bound those.
pub struct WriteStall<S> {
    inner: S,
    wait: Wait,
    metrics: Arc<Metrics>,
}

impl<S> WriteStall<S> {
    pub fn new(inner: S, limit: Duration, metrics: Arc<Metrics>) -> Self {
        WriteStall { inner, wait: Wait::new(limit), metrics }
    }

    /// The outcome of a write-side poll: progress resets the clock, waiting runs it.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Ready(result) => {
                self.wait.moved();
                Poll::Ready(result)
            }
            Poll::Pending => {
                if self.wait.expired(cx) {
                    let limit = self.wait.limit;
                    self.metrics.timeout("client_write");
                    tracing::info!(?limit, "closed a connection whose client stopped reading");
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the client read nothing for {limit:?} (limits.idle_timeout)"),
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteStall<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteStall<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.watch(cx, polled)
    }
}

/// The response bodies of one HTTP/2 connection, watched for a client that stops granting
/// flow-control window. The server library then stops polling the body, so [`IdleBody`]
/// never runs its timer, and the socket keeps moving (pings, other streams), so
/// [`WriteStall`] never sees a stall: the stream, its upstream connection and the client's
/// connection slot would be held for ever.
#[derive(Default)]
pub struct Handovers {
    bodies: Mutex<Vec<Weak<Handover>>>,
}

/// When a body last handed a frame over (or was created) without being polled since.
type Handover = Mutex<Option<Instant>>;

impl Handovers {
    /// `body`, watched from now until it ends or is dropped.
    pub fn watch<B: Body>(&self, body: B) -> HandedBody<B> {
        let now = (!body.is_end_stream()).then(Instant::now);
        let waiting_since = Arc::new(Mutex::new(now));
        let mut bodies = self.bodies.lock();
        bodies.retain(|body| body.strong_count() > 0);
        bodies.push(Arc::downgrade(&waiting_since));
        HandedBody { inner: body, waiting_since }
    }

    /// The longest any live body has waited for the client to take (make room for) what it
    /// handed over.
    pub fn longest_wait(&self) -> Option<Duration> {
        let mut bodies = self.bodies.lock();
        bodies.retain(|body| body.strong_count() > 0);
        bodies.iter().filter_map(|body| *body.upgrade()?.lock()).map(|since| since.elapsed()).max()
    }
}

/// A response body of an HTTP/2 stream whose hand-overs [`Handovers`] watches.
pub struct HandedBody<B> {
    inner: B,
    waiting_since: Arc<Handover>,
}

impl<B: Body + Unpin> Body for HandedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        // Polled: the client has room. A frame handed over starts the wait for the next
        // poll, unless it was the last.
        let waiting = matches!(polled, Poll::Ready(Some(_))) && !this.inner.is_end_stream();
        *this.waiting_since.lock() = waiting.then(Instant::now);
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
