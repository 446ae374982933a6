//! Configuration reload: on SIGHUP and when the file changes, a new configuration is loaded
//! and swapped in whole, or the running one stays; restart-only settings are kept and named.

use super::{Active, ConfigError, GateConfig, Metrics, Shared, log, restart_only, route, tls};
use restart_only::RestartOnly;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tagpolicy::Loader;

/// How often the configuration file is checked for changes.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Load a configuration's rules and decision log; each policy the rules apply gets its
/// `error` decisions exported at 0 (see [`Metrics::expect_policies`]).
pub(crate) fn activate(
    config: GateConfig,
    loader: &Loader,
    metrics: &Metrics,
) -> Result<Active, ConfigError> {
    let rules = config.load(loader)?;
    let log = match &config.decision_log {
        Some(path) => Some(
            log::DecisionLog::open(path)
                .map_err(|source| ConfigError::Read { path: path.clone(), source })?,
        ),
        None => None,
    };
    metrics.expect_policies(rules.policy_names());
    Ok(Active { config, rules, log })
}

/// The start-up (and reload) warning for writes that bypass the policies.
pub(crate) fn pass_writes_warning(pass: &route::PassWrites) -> Option<String> {
    (!pass.is_empty()).then(|| {
        format!(
            "WARNING: writes to {} pass through undecided: they bypass the policies",
            pass.patterns().iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
        )
    })
}

pub(crate) fn reload(shared: &Shared) -> Result<(), ConfigError> {
    let _reloading = shared.reloading.lock();
    reload_locked(shared)
}

/// [`reload`], for a caller that holds `shared.reloading`.
pub(crate) fn reload_locked(shared: &Shared) -> Result<(), ConfigError> {
    let current = shared.active.load_full();
    let result = GateConfig::from_file(&current.config.path).and_then(|config| {
        let running = RestartOnly::of(&current.config);
        let changed = running.changed(&RestartOnly::of(&config));
        if !changed.is_empty() {
            tracing::warn!(
                settings = changed.join(", "),
                "these settings change only on restart (certificate files are re-read when \
                 they change); keeping the running ones"
            );
        }
        let config = running.keep_in(config);
        if let Some(warning) = pass_writes_warning(&config.pass_writes) {
            tracing::warn!("{warning}");
        }
        activate(config, &shared.loader, &shared.metrics)
    });
    shared.metrics.reload(result.is_ok());
    let active = result?;
    shared.active.store(Arc::new(active));
    Ok(())
}

/// Re-read the listener's certificate if its files changed; a bad new pair is logged and the
/// old one keeps serving.
fn rotate_certificate(shared: &Shared) {
    let Some(tls) = &shared.tls else { return };
    match tls.rotate_if_changed() {
        tls::Rotation::Unchanged => {}
        tls::Rotation::Rotated => {
            shared.metrics.certificate_reload(true);
            certificate_expiry(shared);
            tracing::info!("TLS certificate reloaded; new connections get it");
        }
        tls::Rotation::Refused(why) => {
            shared.metrics.certificate_reload(false);
            tracing::error!(%why, "TLS certificate not reloaded; the running one stays");
        }
    }
}

/// Say when the certificate being served expires, for an alert to warn before it does.
fn certificate_expiry(shared: &Shared) {
    if let Some(not_after) = shared.tls.as_ref().and_then(|tls| tls.not_after()) {
        shared.metrics.certificate_expiry("listener", not_after);
    }
}

/// Reload on SIGHUP and when the file's modification time or size changes.
pub(crate) async fn watch(shared: Arc<Shared>) {
    certificate_expiry(&shared);
    let path: PathBuf = shared.active.load().config.path.clone();
    let stamp = |path: &Path| -> Option<(SystemTime, u64)> {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    };
    let mut seen = stamp(&path);
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut tick = tokio::time::interval(WATCH_INTERVAL);
    loop {
        #[cfg(unix)]
        let signalled = async {
            match hangup.as_mut() {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let signalled = std::future::pending::<()>();
        let why = tokio::select! {
            () = signalled => "SIGHUP",
            _ = tick.tick() => {
                rotate_certificate(&shared);
                let now = stamp(&path);
                if now == seen || now.is_none() { continue; }
                seen = now;
                "the file changed"
            }
        };
        let shared_for_reload = shared.clone();
        let result = tokio::task::spawn_blocking(move || reload(&shared_for_reload)).await;
        match result {
            Ok(Ok(())) => tracing::info!(path = %path.display(), why, "configuration reloaded"),
            Ok(Err(error)) => {
                tracing::error!(%error, why, "configuration not reloaded; the running one stays")
            }
            Err(error) => tracing::error!(%error, "configuration reload panicked"),
        }
    }
}
