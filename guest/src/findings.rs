//! Collect denials and warnings, then turn them into one [`Decision`].

use crate::{Decision, Finding};

/// A decision under construction: any denial makes it a denial, otherwise any warning
/// makes it a warning, otherwise it allows.
#[derive(Debug, Default)]
pub struct Findings {
    denials: Vec<Finding>,
    warnings: Vec<Finding>,
}

impl Findings {
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuse the request because of `tag`.
    pub fn deny(&mut self, tag: &str, reason: impl Into<String>) {
        self.denials.push(Finding { tag: Some(tag.to_string()), reason: reason.into() });
    }

    /// Refuse the request as a whole (no single tag is to blame).
    pub fn deny_request(&mut self, reason: impl Into<String>) {
        self.denials.push(Finding { tag: None, reason: reason.into() });
    }

    /// Report something about `tag` without refusing.
    pub fn warn(&mut self, tag: &str, reason: impl Into<String>) {
        self.warnings.push(Finding { tag: Some(tag.to_string()), reason: reason.into() });
    }

    /// Report something about the request as a whole without refusing.
    pub fn warn_request(&mut self, reason: impl Into<String>) {
        self.warnings.push(Finding { tag: None, reason: reason.into() });
    }

    pub fn is_denied(&self) -> bool {
        !self.denials.is_empty()
    }

    pub fn into_decision(self) -> Decision {
        if !self.denials.is_empty() {
            Decision::Deny(self.denials)
        } else if !self.warnings.is_empty() {
            Decision::Warn(self.warnings)
        } else {
            Decision::Allow
        }
    }
}
