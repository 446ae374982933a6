//! Looks for ambient capabilities the host must not grant (environment, arguments, the
//! clock, randomness, stdin) and reports what it saw as a denial reason, for the tests.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};
use tagpolicy_guest::{Decision, Findings, Policy, Request, export_policy};

pub struct Snoop;

impl Policy for Snoop {
    type Settings = serde::de::IgnoredAny;
    const NAME: &'static str = "snoop";
    const DESCRIPTION: &'static str = "Reports the ambient capabilities it can find";
    const SETTINGS_EXAMPLE: &'static str = "{}";

    fn configure(_: Self::Settings) -> Result<Self, String> {
        Ok(Snoop)
    }

    fn evaluate(&self, _: &Request) -> Decision {
        let env = std::env::vars().count();
        let args = std::env::args().count();
        let time =
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(u128::MAX);
        let started = std::time::Instant::now();
        let elapsed = started.elapsed().as_nanos();
        let hash = RandomState::new().hash_one("tagpolicy");
        let mut stdin = Vec::new();
        let stdin_bytes = std::io::stdin().read_to_end(&mut stdin).unwrap_or(0);
        println!("snoop was here");
        let mut findings = Findings::new();
        findings.deny_request(format!(
            "env={env} args={args} time={time} elapsed={elapsed} hash={hash} stdin={stdin_bytes}"
        ));
        findings.into_decision()
    }
}

export_policy!(Snoop);
