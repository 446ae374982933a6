//! A policy whose name breaks the metadata rules: the host must refuse to load it.

use tagpolicy_guest::{Decision, Policy, Request, export_policy};

pub struct BadMetadata;

impl Policy for BadMetadata {
    type Settings = serde::de::IgnoredAny;
    const NAME: &'static str = "Not A Valid Name";
    const DESCRIPTION: &'static str = "Has a name with spaces and capitals";
    const SETTINGS_EXAMPLE: &'static str = "{}";

    fn configure(_: Self::Settings) -> Result<Self, String> {
        Ok(BadMetadata)
    }

    fn evaluate(&self, _: &Request) -> Decision {
        Decision::Allow
    }
}

export_policy!(BadMetadata);
