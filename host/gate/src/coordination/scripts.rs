//! The coordination store's Lua scripts (in `scripts/`), each called through a type that
//! names its keys and arguments.

use crate::redis_link::{ScriptCall, millis};
use std::time::Duration;

/// See `scripts/register.lua`.
pub(super) struct Register<'a> {
    pub settings_key: &'a str,
    pub quiet_key: &'a str,
    pub ours: &'a str,
    pub settings_ttl: Duration,
    pub lock_delay: Duration,
}

impl ScriptCall for Register<'_> {
    const SOURCE: &'static str = include_str!("scripts/register.lua");
    /// 1 created, 0 matched, -1 differs (with the store's settings).
    type Reply = (i64, Option<String>);

    fn keys(&self) -> Vec<&str> {
        vec![self.settings_key, self.quiet_key]
    }

    fn args(&self) -> Vec<String> {
        vec![self.ours.to_string(), millis(self.settings_ttl), millis(self.lock_delay)]
    }
}

/// See `scripts/acquire.lua`.
pub(super) struct Acquire<'a> {
    pub lease_key: &'a str,
    pub intent_key: &'a str,
    pub quiet_key: &'a str,
    pub settings_key: &'a str,
    pub generation_key: &'a str,
    pub token: &'a str,
    pub lease: Duration,
    pub ours: &'a str,
}

/// What [`Acquire`] found.
pub(super) enum Acquired {
    /// The lease is ours; what is left of an intent or a quiet period (zero when none).
    Taken { left: Duration, generation: u64 },
    /// Another holder has it.
    Held,
    /// The store holds other settings.
    SettingsDiffer,
    /// The store holds no settings (it lost its data).
    NoSettings,
}

impl Acquire<'_> {
    pub fn decode(reply: (i64, i64, i64, u64)) -> Acquired {
        match reply {
            (1, intent_left, quiet_left, generation) => Acquired::Taken {
                left: Duration::from_millis(intent_left.max(quiet_left).max(0) as u64),
                generation,
            },
            (-1, ..) => Acquired::SettingsDiffer,
            (-2, ..) => Acquired::NoSettings,
            _ => Acquired::Held,
        }
    }
}

impl ScriptCall for Acquire<'_> {
    const SOURCE: &'static str = include_str!("scripts/acquire.lua");
    type Reply = (i64, i64, i64, u64);

    fn keys(&self) -> Vec<&str> {
        vec![
            self.lease_key,
            self.intent_key,
            self.quiet_key,
            self.settings_key,
            self.generation_key,
        ]
    }

    fn args(&self) -> Vec<String> {
        vec![self.token.to_string(), millis(self.lease), self.ours.to_string()]
    }
}

/// See `scripts/renew.lua`.
pub(super) struct Renew<'a> {
    pub lease_key: &'a str,
    pub token: &'a str,
    pub lease: Duration,
}

impl ScriptCall for Renew<'_> {
    const SOURCE: &'static str = include_str!("scripts/renew.lua");
    /// 1 renewed, 0 gone.
    type Reply = i64;

    fn keys(&self) -> Vec<&str> {
        vec![self.lease_key]
    }

    fn args(&self) -> Vec<String> {
        vec![self.token.to_string(), millis(self.lease)]
    }
}

/// See `scripts/release.lua`.
pub(super) struct Release<'a> {
    pub lease_key: &'a str,
    pub token: &'a str,
}

impl ScriptCall for Release<'_> {
    const SOURCE: &'static str = include_str!("scripts/release.lua");
    type Reply = i64;

    fn keys(&self) -> Vec<&str> {
        vec![self.lease_key]
    }

    fn args(&self) -> Vec<String> {
        vec![self.token.to_string()]
    }
}

/// See `scripts/intend.lua`.
pub(super) struct Intend<'a> {
    pub lease_key: &'a str,
    pub intent_key: &'a str,
    pub token: &'a str,
    /// What is about to be written, for whoever finds the intent.
    pub what: &'a str,
    pub lock_delay: Duration,
}

impl ScriptCall for Intend<'_> {
    const SOURCE: &'static str = include_str!("scripts/intend.lua");
    /// 1 recorded, 0 the lease is gone.
    type Reply = i64;

    fn keys(&self) -> Vec<&str> {
        vec![self.lease_key, self.intent_key]
    }

    fn args(&self) -> Vec<String> {
        vec![self.token.to_string(), self.what.to_string(), millis(self.lock_delay)]
    }
}

/// See `scripts/changed.lua`.
pub(super) struct Changed<'a> {
    pub generation_key: &'a str,
    pub lease_key: &'a str,
    pub intent_key: &'a str,
    pub channel: &'a str,
    pub repository: &'a str,
    pub generation_ttl: Duration,
    /// At the end of a holder's change: its token, and whether every write it sent was
    /// answered.
    pub holder: Option<(&'a str, bool)>,
}

impl ScriptCall for Changed<'_> {
    const SOURCE: &'static str = include_str!("scripts/changed.lua");
    /// The new generation.
    type Reply = u64;

    fn keys(&self) -> Vec<&str> {
        vec![self.generation_key, self.lease_key, self.intent_key]
    }

    fn args(&self) -> Vec<String> {
        let mut args = vec![
            self.channel.to_string(),
            self.repository.to_string(),
            millis(self.generation_ttl),
        ];
        if let Some((token, answered)) = self.holder {
            let answered = if answered { "answered" } else { "unanswered" };
            args.extend([token.to_string(), answered.to_string()]);
        }
        args
    }
}
