//! Any bytes as a scenario file: parsed and validated, or refused with an error that names
//! the file; a valid one builds every request without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use tagpolicy_scenario::Scenario;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Scenario::from_yaml(text, Path::new("fuzz.yaml")) {
        Ok(scenario) => {
            let mut state = tagpolicy::TagMap::clone(&scenario.state);
            for step in &scenario.steps {
                let request = step.request(&scenario.repository, &state);
                state.apply(&request);
            }
        }
        Err(error) => assert!(error.to_string().starts_with("`fuzz.yaml`: "), "{error}"),
    }
});
