//! `tagpolicy serve`: run the registry gate.

use super::Exit;
use super::common;
use anyhow::Context;
use std::io::Write;
use std::path::PathBuf;
use tagpolicy_gate::{Gate, GateConfig};

/// Run the registry gate: a reverse proxy in front of an OCI registry that decides every
/// tag change (manifest PUT by tag, `?tag=` multi-tag push, manifest DELETE) with the
/// configured policies, passes reads and blob uploads through untouched, and refuses every
/// other write, and every other spelling of a tag change (`%2F`, `//`, `/../`, `?TAG=`, …),
/// that a registry behind it could apply undecided.
///
/// A denial is HTTP 409 `DENIED` with the policies' reasons, which skopeo, buildah and
/// docker print; warnings pass with `Warning: 299` headers. The configuration is reloaded
/// on SIGHUP and when the file changes; an invalid new one is logged and the running one
/// stays. `/metrics` (Prometheus), `/healthz` and `/readyz` are served on the same address.
#[derive(Debug, clap::Args)]
#[command(after_help = "Configuration (YAML; unknown fields are errors):\n\n  \
    listen: 127.0.0.1:5000                 # port 0 picks a free port\n  \
    upstream: http://127.0.0.1:5001        # the registry behind the gate\n  \
    decision_log: decisions.jsonl          # optional, one JSON object per decision\n  \
    state_cache_seconds: 10                # optional, reuse of tag lists read for policies\n  \
    pass_writes: [\"/api/v2.0/**\"]          # optional: other writes let through UNDECIDED\n  \
    limits: {header_timeout: 10s, body_timeout: 30s, upstream_write_timeout: 30s,\n  \
             lock_timeout: 30s, idle_timeout: 60s, max_connections: 1024,\n  \
             max_connections_per_client: 64, max_header_bytes: 65536,\n  \
             max_config_bytes: 1048576, shutdown_grace: 25s}   # the defaults\n  \
    authoritative: false                   # true: all writes pass the gates; digests are kept\n  \
    coordination:                          # optional: several gates in front of one registry\n    \
      redis: redis://10.0.0.5:6379/0       # every replica takes a lease per repository here\n    \
      lease: 10s                           # renewed while a change runs\n  \
    notifications: {token_file: t.token}   # optional: POST /tagpolicy/notifications webhook\n  \
    identity:                              # optional: who the actor is (README: Identities)\n    \
      htpasswd: users.htpasswd             # bcrypt entries (htpasswd -B)\n    \
      jwt: {public_key: signer.pem, issuer: my-issuer, audience: my-registry, groups_claim: groups}\n    \
      trusted_header: {name: X-Forwarded-User, from: [\"127.0.0.1/32\"]}\n    \
      anonymous: allow                     # or deny: 401 for anonymous tag changes\n  \
    policy_registries:                     # optional: for policies named oci://…\n    \
      verify: {keys: [release.pub], threshold: 1}\n    \
      refresh: 5m                          # tags are resolved again this often\n  \
    rules:                                 # the first rule whose globs match applies\n    \
    - repositories: [\"team/**\", \"library/*\"]\n      \
      policies:                            # as in scenario files\n        \
        - policy: immutable-tags\n          \
          settings: {mutable: [\"latest\", \"\\\\d+\\\\.\\\\d+\"]}\n\n\
    Repositories no rule matches are not restricted. Logs go to stderr (RUST_LOG=debug for more).\n\n\
    Examples:\n  \
    tagpolicy serve --config gate.yaml\n  \
    tagpolicy serve --config gate.yaml --check")]
pub struct Args {
    /// The gate configuration file.
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
    /// Check the configuration and load every policy, then exit (0 if valid, 2 if not).
    #[arg(long)]
    check: bool,
    /// Log lines as JSON objects instead of text.
    #[arg(long)]
    log_json: bool,
}

pub fn run(args: Args, global: &super::Global) -> anyhow::Result<Exit> {
    init_logging(args.log_json);
    #[cfg(unix)]
    // SAFETY: before any thread exists. A client that hangs up must not end the gate.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    if args.check {
        let gate = Gate::load(&args.config, common::loader(global)?)?;
        println!("`{}`: valid", args.config.display());
        for line in gate.describe() {
            println!("  {line}");
        }
        return Ok(Exit::Success);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tagpolicy-gate")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        // The admin endpoints answer while the policies compile (which can take a while
        // without a compile cache): alive, not ready.
        let config = GateConfig::from_file(&args.config)?;
        let (loaded, loading_admin) = match config.admin_listen {
            Some(admin_listen) => {
                let listener = tokio::net::TcpListener::bind(admin_listen)
                    .await
                    .with_context(|| format!("cannot listen on `{admin_listen}` (admin_listen)"))?;
                let (loaded, wait) = tokio::sync::oneshot::channel();
                let serving = tokio::spawn(tagpolicy_gate::serve_while_loading(listener, wait));
                (Some(loaded), Some(serving))
            }
            None => (None, None),
        };
        let loader = common::loader(global)?;
        let gate = tokio::task::spawn_blocking(move || Gate::from_config(config, loader))
            .await
            .context("loading the gate configuration stopped")??;
        drop(loaded);
        let admin = match loading_admin {
            Some(serving) => Some(serving.await.context("the admin listener stopped")?),
            None => None,
        };
        // Before listening: a replica whose settings differ from the others' must not serve.
        gate.connect().await?;
        let listen = gate.listen();
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on `{listen}`"))?;
        let address = listener.local_addr()?;
        // The first line on stdout, for scripts and tests that start the gate on port 0.
        println!("tagpolicy gate listening on {}://{address}", gate.scheme());
        let gate = match admin {
            Some(admin) => {
                let admin_address = admin.local_addr()?;
                tracing::info!(address = %admin_address, "admin endpoints listening");
                // The second line, for scripts that start it on port 0; a reader that took
                // only the first line and closed the pipe must not stop the gate.
                let _ = writeln!(
                    std::io::stdout(),
                    "tagpolicy gate admin endpoints on http://{admin_address}"
                );
                gate.with_admin_listener(admin)
            }
            None => gate,
        };
        for line in gate.describe() {
            tracing::info!("{line}");
        }
        gate.serve(listener, shutdown()).await?;
        tracing::info!("stopped");
        Ok(Exit::Success)
    })
}

/// SIGINT or SIGTERM.
async fn shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    use tagpolicy_gate::GateLimits;

    /// The limits `serve --help` shows are the defaults, by their configuration names.
    #[test]
    fn the_help_shows_the_default_limits() {
        let command = <super::Args as clap::Args>::augment_args(clap::Command::new("serve"));
        let help = command.get_after_help().expect("serve has an after_help").to_string();
        let start = help.find("limits: {").expect("a limits line");
        let end = start + help[start..].find('}').expect("the end of the limits") + 1;
        #[derive(serde::Deserialize)]
        struct Shown {
            limits: GateLimits,
        }
        let shown: Shown = serde_yaml_ng::from_str(&help[start..end])
            .unwrap_or_else(|e| panic!("{e}:\n{}", &help[start..end]));
        assert_eq!(shown.limits, GateLimits::default());
        // Every limit is shown, none left to an unseen default: the names shown are the
        // fields declared in the gate's source.
        let source = include_str!("../../gate/src/limits.rs");
        let declared = &source[source.find("pub struct GateLimits {").unwrap()..];
        let declared = &declared[..declared.find("\n}").unwrap()];
        let fields: Vec<&str> = declared
            .lines()
            .filter_map(|line| line.strip_prefix("    pub ")?.split(':').next())
            .collect();
        let shown_names: Vec<&str> = help[start + "limits: {".len()..end - 1]
            .split(',')
            .map(|entry| entry.split(':').next().unwrap().trim())
            .collect();
        assert_eq!(shown_names, fields);
    }
}
