//! How the gate stops without dropping what it has started: on the signal it stops
//! accepting connections and reports not ready, each connection finishes the requests it has
//! in flight (a decided write waiting on the upstream included) and then closes, and the gate
//! waits for them at most `limits.shutdown_grace` before it releases its leases and returns.

use std::future::Future;
use std::pin::Pin;
use tokio::sync::watch;

/// Whether the gate has begun to stop; shared by the server loop, every connection and
/// `/readyz`.
pub(crate) struct Stopping(watch::Sender<bool>);

impl Stopping {
    pub fn new() -> Self {
        Stopping(watch::Sender::new(false))
    }

    pub fn begin(&self) {
        self.0.send_replace(true);
    }

    pub fn has_begun(&self) -> bool {
        *self.0.borrow()
    }

    /// A signal a connection waits on.
    pub fn signal(&self) -> StopSignal {
        StopSignal(self.0.subscribe())
    }
}

/// Completes once the gate begins to stop.
pub(crate) struct StopSignal(watch::Receiver<bool>);

impl StopSignal {
    pub async fn begun(&mut self) {
        // An error means the sender is gone, which only happens when the gate is gone.
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }
}

/// Drive a connection to its end; if the gate begins to stop first, ask it to finish
/// gracefully (`graceful`: hyper's `graceful_shutdown`, which answers what is in flight and
/// then closes) and keep driving it.
pub(crate) async fn serve_until_stopped<F: Future>(
    mut connection: Pin<&mut F>,
    mut stop: StopSignal,
    graceful: impl FnOnce(Pin<&mut F>),
) -> F::Output {
    tokio::select! {
        ended = connection.as_mut() => return ended,
        () = stop.begun() => graceful(connection.as_mut()),
    }
    connection.await
}
