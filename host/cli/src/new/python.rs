//! A new Python policy: `pyproject.toml` and the app module `policy.py`. The SDK is not a
//! dependency to install: `tagpolicy build` writes the one it carries next to the policy.

use super::File;

const POLICY_TEMPLATE: &str = include_str!("../templates/python-policy.py.txt");
const PYPROJECT_TEMPLATE: &str = include_str!("../templates/python-pyproject.toml.txt");
const SCENARIO_TEMPLATE: &str = include_str!("../templates/python-scenario.yaml.txt");

/// The files of a new Python policy named `name`.
pub fn files(name: &str) -> Vec<File> {
    let fill = |template: &str| template.replace("{{name}}", name);
    vec![
        ("pyproject.toml", fill(PYPROJECT_TEMPLATE)),
        ("policy.py", fill(POLICY_TEMPLATE)),
        ("scenarios/basic.yaml", fill(SCENARIO_TEMPLATE)),
        (".gitignore", "/build\n".to_string()),
    ]
}
