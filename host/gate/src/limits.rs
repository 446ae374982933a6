//! The gate's own limits on clients and on the upstream (the policies' limits are set per
//! policy): no stuck or hostile client, and no stuck upstream, holds a connection slot or a
//! repository's lock for longer than these allow.

use serde::{Deserialize, Deserializer};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GateLimits {
    /// Time to receive a request's headers, counted from the first read; a kept-alive
    /// connection waiting for its next request is closed after it too.
    #[serde(deserialize_with = "duration")]
    pub header_timeout: Duration,
    /// Time to receive a manifest's body (read before the repository is locked).
    #[serde(deserialize_with = "duration")]
    pub body_timeout: Duration,
    /// Time the upstream has to answer one write the gate sends while it holds a
    /// repository's lock (the push itself, each tag of a multi-tag push, each undo).
    #[serde(deserialize_with = "duration")]
    pub upstream_write_timeout: Duration,
    /// Time a tag change waits for another change of the same repository to finish.
    #[serde(deserialize_with = "duration")]
    pub lock_timeout: Duration,
    /// Time a pass-through body (a blob upload or download) may go without a byte, and a
    /// client may go without reading what the gate writes to it, before its connection is
    /// closed; a gate waiting on the upstream does not count.
    #[serde(deserialize_with = "duration")]
    pub idle_timeout: Duration,
    /// Connections served at once; more get 429 `TOOMANYREQUESTS` and are closed.
    pub max_connections: usize,
    /// Connections served at once from one client address, so that one client cannot take
    /// every slot (a value over `max_connections` means no limit of its own). Behind a load
    /// balancer that does not keep client addresses, raise it to `max_connections`.
    pub max_connections_per_client: usize,
    /// Bytes of request line and headers; more get 431.
    pub max_header_bytes: usize,
    /// Bytes of an image config the gate reads for a policy that asks for its labels; a
    /// larger config denies the request.
    pub max_config_bytes: usize,
    /// Time a stopping gate (SIGTERM) gives the requests in flight to finish; connections
    /// still open after it are closed. Keep it under the orchestrator's kill deadline
    /// (Kubernetes' `terminationGracePeriodSeconds`, systemd's `TimeoutStopSec`).
    #[serde(deserialize_with = "duration")]
    pub shutdown_grace: Duration,
}

impl Default for GateLimits {
    fn default() -> Self {
        GateLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            upstream_write_timeout: Duration::from_secs(30),
            lock_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            max_connections_per_client: 64,
            max_header_bytes: 64 << 10,
            max_config_bytes: 1 << 20,
            shutdown_grace: Duration::from_secs(25),
        }
    }
}

impl GateLimits {
    /// A value out of range, named by its field.
    pub fn check(&self) -> Result<(), String> {
        let durations = [
            ("header_timeout", self.header_timeout),
            ("body_timeout", self.body_timeout),
            ("upstream_write_timeout", self.upstream_write_timeout),
            ("lock_timeout", self.lock_timeout),
            ("idle_timeout", self.idle_timeout),
            ("shutdown_grace", self.shutdown_grace),
        ];
        for (field, value) in durations {
            if value.is_zero() || value > Duration::from_secs(3600) {
                return Err(format!(
                    "limits.{field}: `{}` is out of range (more than 0, at most 1h)",
                    humantime::format_duration(value)
                ));
            }
        }
        if self.max_connections == 0 {
            return Err("limits.max_connections: must be at least 1".into());
        }
        if self.max_connections_per_client == 0 {
            return Err("limits.max_connections_per_client: must be at least 1".into());
        }
        if !(4096..=1 << 20).contains(&self.max_header_bytes) {
            return Err(format!(
                "limits.max_header_bytes: `{}` is out of range (4096 to 1048576)",
                self.max_header_bytes
            ));
        }
        if !(1024..=64 << 20).contains(&self.max_config_bytes) {
            return Err(format!(
                "limits.max_config_bytes: `{}` is out of range (1024 to 67108864)",
                self.max_config_bytes
            ));
        }
        Ok(())
    }
}

/// `10s`, `500ms`, `1m 30s` (humantime).
pub(crate) fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "`{text}` is not a duration ({e}); write e.g. `10s` or `500ms`"
        ))
    })
}
