//! The decision log: one JSON object per line for every decided request.

use parking_lot::Mutex;
use serde::Serialize;
use std::io::Write;
use std::path::Path;

#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    pub time: String,
    pub repository: &'a str,
    pub operation: &'static str,
    pub tags: Vec<&'a str>,
    pub digest: Option<&'a str>,
    pub actor: Option<&'a str>,
    pub actor_source: super::identity::ActorSource,
    pub decision: &'static str,
    pub reasons: Vec<Reason<'a>>,
    pub policies: Vec<&'a str>,
    pub latency_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct Reason<'a> {
    pub policy: &'a str,
    pub severity: &'static str,
    pub tag: Option<&'a str>,
    pub reason: &'a str,
    /// The kind of a policy's failure (`trap`, `deadline`…) when the finding is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<&'static str>,
}

pub struct DecisionLog {
    file: Mutex<std::fs::File>,
}

impl DecisionLog {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(DecisionLog { file: Mutex::new(file) })
    }

    /// Append one line. A failing log is reported, not fatal: the decision stands.
    pub fn write(&self, entry: &Entry<'_>) {
        let mut line = serde_json::to_vec(entry).expect("plain data serializes");
        line.push(b'\n');
        let mut file = self.file.lock();
        if let Err(error) = file.write_all(&line) {
            tracing::error!(%error, "cannot write the decision log");
        }
    }
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
