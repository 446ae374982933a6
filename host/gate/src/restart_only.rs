//! The settings a reload keeps as they were at start: the listeners, the upstream and how it
//! is reached, the limits, and what the gate built its coordination, index and policy
//! fetching from. Listed once, here; a reload compares them, names the ones that changed
//! and keeps the running values.

use super::config::{CoordinationSpec, GateConfig, ReadAccountSpec};
use super::index::IndexSettings;
use super::limits::GateLimits;
use super::tls::CertificateFiles;
use std::net::SocketAddr;
use std::path::PathBuf;
use tagpolicy_oci::config::RegistriesConfig;

/// The name of a setting in the file: its field's, unless given.
macro_rules! file_name {
    ($field:ident) => {
        stringify!($field)
    };
    ($field:ident, $name:literal) => {
        $name
    };
}

macro_rules! restart_only {
    ($($field:ident: $type:ty $(= $name:literal)?),* $(,)?) => {
        /// A configuration's restart-only settings.
        #[derive(Debug, Clone, PartialEq)]
        pub(crate) struct RestartOnly {
            $($field: $type,)*
        }

        impl RestartOnly {
            pub(crate) fn of(config: &GateConfig) -> Self {
                Self { $($field: config.$field.clone(),)* }
            }

            /// `config` with these settings in place of its own.
            pub(crate) fn keep_in(self, mut config: GateConfig) -> GateConfig {
                $(config.$field = self.$field;)*
                config
            }

            /// The names (as in the file) of the settings that differ from `other`'s.
            pub(crate) fn changed(&self, other: &Self) -> Vec<&'static str> {
                let mut changed = Vec::new();
                $(if self.$field != other.$field {
                    changed.push(file_name!($field $(, $name)?));
                })*
                changed
            }
        }
    };
}

restart_only! {
    listen: SocketAddr,
    admin_listen: Option<SocketAddr>,
    tls: Option<CertificateFiles>,
    upstream: http::Uri,
    upstream_ca: Option<PathBuf>,
    upstream_client_cert: Option<CertificateFiles>,
    limits: GateLimits,
    coordination: Option<CoordinationSpec>,
    authoritative: bool,
    notifications_token_file: Option<PathBuf> = "notifications",
    policy_registries: RegistriesConfig,
    upstream_read: Option<ReadAccountSpec>,
    index: IndexSettings,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(yaml: &str) -> GateConfig {
        GateConfig::from_yaml(yaml, Path::new("/etc/tagpolicy/gate.yaml")).unwrap()
    }

    #[test]
    fn a_reload_names_and_keeps_what_changes_only_on_restart() {
        let running = parse("listen: 127.0.0.1:5000\nupstream: http://127.0.0.1:5001\n");
        let new = parse(
            "listen: 127.0.0.1:6000\nupstream: http://127.0.0.1:5001\nauthoritative: true\n\
             limits: {max_connections: 10}\nstate_cache_seconds: 3\n\
             notifications: {token_file: token}\n",
        );
        let kept = RestartOnly::of(&running);
        assert_eq!(
            kept.changed(&RestartOnly::of(&new)),
            ["listen", "limits", "authoritative", "notifications"]
        );
        let reloaded = kept.keep_in(new);
        assert_eq!(reloaded.listen.port(), 5000);
        assert!(!reloaded.authoritative);
        assert_eq!(reloaded.limits, running.limits);
        // What a reload may change, it changes.
        assert_eq!(reloaded.state_cache, std::time::Duration::from_secs(3));
    }
}
