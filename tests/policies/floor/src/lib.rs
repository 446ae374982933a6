//! `floor`: allows every request without reading it. What a decision costs with it is the
//! cost of the call itself (entering the component, lowering the request, lifting the
//! answer), which `tagpolicy bench` reports beside the real policy as the floor.

use tagpolicy_guest::{Decision, Policy, Request, export_policy};

pub struct Floor;

impl Policy for Floor {
    type Settings = serde::de::IgnoredAny;
    const NAME: &'static str = "floor";
    const DESCRIPTION: &'static str =
        "Allows every request without reading it (the cost of a call)";
    const SETTINGS_EXAMPLE: &'static str = "{}";

    fn configure(_: serde::de::IgnoredAny) -> Result<Self, String> {
        Ok(Floor)
    }

    fn evaluate(&self, _: &Request) -> Decision {
        Decision::Allow
    }
}

export_policy!(Floor);
