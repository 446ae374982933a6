//! How the gate talks to Redis, for coordination and for the index: connection settings, a
//! URL fit for logs, and Lua scripts called through typed calls.

use redis::aio::ConnectionManager;
use std::time::Duration;

/// How the gate talks to Redis: each command within `timeout`, and a prompt reconnection once
/// Redis is back, since changes wait on it.
pub(crate) fn connection_config(timeout: Duration) -> redis::aio::ConnectionManagerConfig {
    redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500))
}

/// `redis://user:secret@host:port/db` without the secret.
pub(crate) fn shown_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{}{user}:***@{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// One call of a Lua script. The script lives in a `.lua` file whose first lines give its
/// `KEYS` and `ARGV` names; the type implementing this holds them as named fields and puts
/// them in that order, so each position is written once, beside the script, and a caller
/// never counts.
pub(crate) trait ScriptCall {
    /// The script's source.
    const SOURCE: &'static str;
    /// What the script returns.
    type Reply: redis::FromRedisValue;
    /// `KEYS`, in the script's order.
    fn keys(&self) -> Vec<&str>;
    /// `ARGV`, in the script's order.
    fn args(&self) -> Vec<String>;
}

/// Run `call` on `connection`.
pub(crate) async fn run<C: ScriptCall>(
    connection: &mut ConnectionManager,
    call: &C,
) -> redis::RedisResult<C::Reply> {
    let script = redis::Script::new(C::SOURCE);
    let mut invocation = script.prepare_invoke();
    for key in call.keys() {
        invocation.key(key);
    }
    for arg in call.args() {
        invocation.arg(arg);
    }
    invocation.invoke_async(connection).await
}

/// A duration as a Redis expiry argument, in milliseconds (at least 1: `PX 0` is an error).
pub(crate) fn millis(duration: Duration) -> String {
    duration.as_millis().max(1).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            shown_url("redis://gate:s3cret@10.0.0.1:6379/2"),
            "redis://gate:***@10.0.0.1:6379/2"
        );
        assert_eq!(shown_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
