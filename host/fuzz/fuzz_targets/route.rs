//! Request targets and methods through the gate's classifier, checked against the model of
//! how registries route them (tests/support/router_model.rs): a request that some server
//! reads as a manifest write must be decided as exactly that write or refused.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../../tests/support/router_model.rs"]
mod router_model;

const METHODS: [&str; 8] = ["PUT", "DELETE", "POST", "PATCH", "GET", "HEAD", "put", "OPTIONS"];

fuzz_target!(|input: (u8, &str)| {
    let (method, target) = input;
    let method = METHODS[method as usize % METHODS.len()];
    if let Err(message) = router_model::check_gate(method, target) {
        panic!("{message}");
    }
});
