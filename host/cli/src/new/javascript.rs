//! A new JavaScript policy: an ES module package whose `policy.js` imports the SDK as
//! `tagpolicy-guest`. The SDK itself comes from `tagpolicy build` (the one this binary
//! carries), so the package only pins the toolchain: componentize-js, rolldown, and
//! preview2-shim, which componentize-js 0.23.0 loads without declaring it.

use super::File;

const PACKAGE_TEMPLATE: &str = include_str!("../templates/javascript-package.json.txt");
const POLICY_TEMPLATE: &str = include_str!("../templates/javascript-policy.js.txt");
const SCENARIO_TEMPLATE: &str = include_str!("../templates/javascript-scenario.yaml.txt");

/// The files of a new JavaScript policy named `name`.
pub fn files(name: &str) -> Vec<File> {
    vec![
        ("package.json", PACKAGE_TEMPLATE.replace("{{name}}", name)),
        ("policy.js", POLICY_TEMPLATE.replace("{{name}}", name)),
        ("scenarios/basic.yaml", SCENARIO_TEMPLATE.replace("{{name}}", name)),
        (".gitignore", "/build\n/node_modules\n".to_string()),
    ]
}

#[cfg(test)]
mod tests {
    /// The scaffold pins the toolchain the SDK package pins and tests with.
    #[test]
    fn pins_the_sdk_toolchain() {
        let sdk: serde_json::Value =
            serde_json::from_str(include_str!("../../../../guest/javascript/package.json"))
                .unwrap();
        let new: serde_json::Value =
            serde_json::from_str(&super::files("demo")[0].1).expect("package.json is JSON");
        for tool in
            ["@bytecodealliance/componentize-js", "@bytecodealliance/preview2-shim", "rolldown"]
        {
            assert_eq!(new["devDependencies"][tool], sdk["devDependencies"][tool], "{tool}");
        }
    }
}
