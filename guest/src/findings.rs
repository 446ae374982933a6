//! Collect denials and warnings, then turn them into one [`Decision`].

/// Why a request is refused or reported: about one tag, or (`tag: None`) the request as a
/// whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub tag: Option<String>,
    /// One line a person can act on.
    pub reason: String,
}

/// A policy's answer. A denial refuses the whole request: no tag of it is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Go ahead, but report these findings.
    Warn(Vec<Finding>),
    /// Refuse the request; the list names every tag refused and why.
    Deny(Vec<Finding>),
}

impl Decision {
    /// Tell the host: each finding through `verdict` (nothing for an allow).
    pub(crate) fn report(self) {
        use crate::bindings::tagpolicy::policy::verdict;
        match self {
            Decision::Allow => {}
            Decision::Warn(findings) => {
                for f in findings {
                    verdict::warn(f.tag.as_deref(), &f.reason);
                }
            }
            Decision::Deny(findings) => {
                // A denial must say why, or the host could not tell it from an allow.
                if findings.is_empty() {
                    verdict::deny(None, "denied without a reason");
                }
                for f in findings {
                    verdict::deny(f.tag.as_deref(), &f.reason);
                }
            }
        }
    }
}

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
