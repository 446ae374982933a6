//! Following policy tags: every `policy_registries.refresh`, each `oci://…:tag` policy is
//! resolved again. A new digest that verifies (signed, a Wasm policy artifact, a newer
//! version) is swapped in like a configuration reload; if the policies do not load with
//! it, the verified version before it stays. A registry that cannot be reached, or a tag
//! that names something refused, keeps the last verified version: said in the log and in
//! `tagpolicy_gate_policy_stale` / `tagpolicy_gate_policy_refreshes_total`.

use std::sync::Arc;
use std::time::Duration;

use tagpolicy_oci::fetch::{Fetcher, Refresh};

use super::Shared;

/// Resolve the tags in use again every `interval`, forever.
pub async fn follow(shared: Arc<Shared>, fetcher: Arc<Fetcher>, interval: Duration) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if fetcher.pinned().is_empty() {
            continue;
        }
        let (shared, fetcher) = (shared.clone(), fetcher.clone());
        if let Err(error) = tokio::task::spawn_blocking(move || refresh(&shared, &fetcher)).await {
            tracing::error!(%error, "policy refresh panicked");
        }
    }
}

/// One round: resolve, swap in what moved, count and log.
fn refresh(shared: &Shared, fetcher: &Fetcher) {
    // The whole round, pins included, under the reload lock: a file-change reload cannot
    // load with the old pins and be stored after the swap, nor with new pins being undone.
    let _reloading = shared.reloading.lock();
    let reports = match fetcher.refresh() {
        Ok(reports) => reports,
        Err(error) => {
            tracing::error!(%error, "policy tags not resolved again");
            return;
        }
    };
    let mut stale = 0;
    let mut moved = Vec::new();
    for (reference, outcome) in reports {
        match outcome {
            Refresh::Unchanged => shared.metrics.policy_refresh("unchanged"),
            Refresh::Unreachable(why) => {
                stale += 1;
                shared.metrics.policy_refresh("unreachable");
                tracing::warn!(reference = %reference, %why, "policy registry unreachable: keeping the last verified version");
            }
            Refresh::Refused(why) => {
                stale += 1;
                shared.metrics.policy_refresh("refused");
                tracing::error!(reference = %reference, %why, "policy tag names something refused: keeping the last verified version");
            }
            Refresh::Moved { from, to } => moved.push((reference, from, to)),
        }
    }
    if !moved.is_empty() {
        // The fetcher already answers with the new digests: load every rule with them.
        match super::reload::reload_locked(shared) {
            Ok(()) => {
                for (reference, from, to) in &moved {
                    shared.metrics.policy_refresh("swapped");
                    tracing::info!(
                        reference = %reference,
                        from = %from.digest,
                        to = %to.digest,
                        version = to.version.as_deref().unwrap_or(""),
                        "policy tag moved: the new verified version is in use"
                    );
                    if let Err(error) = fetcher.confirm(to) {
                        tracing::warn!(%error, "the new resolution is not recorded in the cache");
                    }
                }
            }
            Err(error) => {
                for (reference, from, to) in &moved {
                    stale += 1;
                    shared.metrics.policy_refresh("not_loaded");
                    fetcher.restore(from);
                    tracing::error!(
                        reference = %reference,
                        to = %to.digest,
                        %error,
                        "policy tag moved, but the policies do not load with it: keeping the last verified version"
                    );
                }
            }
        }
    }
    shared.metrics.policy_stale(stale);
}
