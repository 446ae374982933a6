//! Tries to read a file and open a socket. Rust std then imports `wasi:filesystem` and
//! `wasi:sockets`, which the host does not link: the component must be refused at load.

use tagpolicy_guest::{Decision, Findings, Policy, Request, export_policy};

pub struct Escape;

impl Policy for Escape {
    type Settings = serde::de::IgnoredAny;
    const NAME: &'static str = "escape";
    const DESCRIPTION: &'static str = "Tries to read files and reach the network";
    const SETTINGS_EXAMPLE: &'static str = "{}";

    fn configure(_: Self::Settings) -> Result<Self, String> {
        Ok(Escape)
    }

    fn evaluate(&self, _: &Request) -> Decision {
        let mut findings = Findings::new();
        if let Ok(secret) = std::fs::read_to_string("/etc/passwd") {
            findings.deny_request(format!("read {} bytes", secret.len()));
        }
        if std::net::TcpStream::connect("127.0.0.1:5000").is_ok() {
            findings.deny_request("connected");
        }
        findings.into_decision()
    }
}

export_policy!(Escape);
