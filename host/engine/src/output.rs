//! What a policy writes to stdout and stderr, or through the contract's `output` (Python's
//! `print`, JavaScript's `console.log`): kept up to a cap per call
//! ([`Limits::output_bytes`](crate::Limits::output_bytes)) for its author (the [`Printed`] of a
//! [`Decision`](crate::Decision)) and for diagnostics (panic messages), and dropped, counted,
//! beyond it. Writes never fail, so a chatty policy is not turned into a crashing one (Rust's
//! `println!` panics on a failed write).

use bytes::Bytes;
use parking_lot::Mutex;
use serde::Serialize;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// What one policy printed to stdout and stderr (interleaved, as written) during one call,
/// up to [`Limits::output_bytes`](crate::Limits::output_bytes) (64 KiB by default); the
/// bytes beyond are dropped and counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Printed {
    /// The policy's name.
    pub policy: String,
    /// What was kept, decoded from UTF-8 (invalid sequences replaced).
    pub text: String,
    /// How many bytes were written beyond the cap, and dropped.
    pub dropped_bytes: u64,
}

impl std::fmt::Display for Printed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)?;
        if self.dropped_bytes > 0 {
            write!(f, "\n… ({} more bytes dropped)", self.dropped_bytes)?;
        }
        Ok(())
    }
}

/// A capped buffer shared by the policy's stdout and stderr.
#[derive(Clone)]
pub(crate) struct PolicyOutput {
    buffer: Arc<Mutex<Buffer>>,
    /// Whether anything was written since the last `take`: most calls print nothing, and
    /// then `take` costs no lock.
    written: Arc<AtomicBool>,
}

struct Buffer {
    kept: Vec<u8>,
    capacity: usize,
    dropped: usize,
}

impl PolicyOutput {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            buffer: Arc::new(Mutex::new(Buffer { kept: Vec::new(), capacity, dropped: 0 })),
            written: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Keep `bytes` up to the cap: the policy's stdout and stderr, and contract `output`.
    pub(crate) fn append(&self, bytes: &[u8]) {
        let mut buffer = self.buffer.lock();
        let room = buffer.capacity - buffer.kept.len();
        let kept = bytes.len().min(room);
        buffer.kept.extend_from_slice(&bytes[..kept]);
        buffer.dropped += bytes.len() - kept;
        self.written.store(true, Ordering::Release);
    }

    /// Take what was written since the last call by `policy`: `None` if nothing was.
    pub(crate) fn take(&self, policy: &str) -> Option<Printed> {
        if !self.written.swap(false, Ordering::Acquire) {
            return None;
        }
        let mut buffer = self.buffer.lock();
        let printed = Printed {
            policy: policy.to_string(),
            text: String::from_utf8_lossy(&buffer.kept).into_owned(),
            dropped_bytes: buffer.dropped as u64,
        };
        buffer.kept.clear();
        buffer.dropped = 0;
        Some(printed)
    }
}

impl IsTerminal for PolicyOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for PolicyOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

impl OutputStream for PolicyOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 << 10)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for PolicyOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for PolicyOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_beyond_the_cap_is_dropped_and_counted_and_take_resets() {
        let output = PolicyOutput::new(8);
        let mut stream = output.clone();
        stream.write(Bytes::from_static(b"hello ")).unwrap();
        stream.write(Bytes::from_static(b"world")).unwrap();
        let printed = output.take("p").unwrap();
        assert_eq!((printed.text.as_str(), printed.dropped_bytes), ("hello wo", 3));
        assert_eq!(printed.to_string(), "hello wo\n… (3 more bytes dropped)");
        assert_eq!(output.take("p"), None);
        stream.write(Bytes::from_static(b"again")).unwrap();
        assert_eq!(output.take("p").unwrap().to_string(), "again");
    }
}
