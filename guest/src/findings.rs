//! Collect denials and warnings, then turn them into one [`Decision`].

/// Why a request is refused or reported: about one tag, or (`tag: None`) the request as a
/// whole.
///
/// ```
/// use tagpolicy_guest::{Decision, Finding, Findings};
///
/// let mut findings = Findings::new();
/// findings.deny("latest", "`latest` is protected");
/// let expected = Finding { tag: Some("latest".into()), reason: "`latest` is protected".into() };
/// assert_eq!(findings.into_decision(), Decision::Deny(vec![expected]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The tag it is about; `None` for the request as a whole.
    pub tag: Option<String>,
    /// One line a person can act on.
    pub reason: String,
}

/// A policy's answer. A denial refuses the whole request: no tag of it is applied.
/// [`Findings::into_decision`] builds it.
///
/// ```
/// use tagpolicy_guest::{Decision, Findings};
///
/// let mut findings = Findings::new();
/// findings.warn("latest", "`latest` moves: pin a release instead");
/// match findings.into_decision() {
///     Decision::Warn(warnings) => assert_eq!(warnings[0].tag.as_deref(), Some("latest")),
///     other => panic!("{other:?}"),
/// }
/// ```
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
///
/// ```
/// use tagpolicy_guest::{Decision, Findings};
///
/// let mut findings = Findings::new();
/// findings.warn("latest", "`latest` moves");
/// findings.deny("1.3.1", "no signature");
/// assert!(matches!(findings.into_decision(), Decision::Deny(denials) if denials.len() == 1));
/// ```
#[derive(Debug, Default)]
pub struct Findings {
    denials: Vec<Finding>,
    warnings: Vec<Finding>,
}

impl Findings {
    /// No findings yet: a decision that allows.
    ///
    /// ```
    /// use tagpolicy_guest::{Decision, Findings};
    ///
    /// assert_eq!(Findings::new().into_decision(), Decision::Allow);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuse the request because of `tag`.
    ///
    /// ```
    /// use tagpolicy_guest::Findings;
    ///
    /// let mut findings = Findings::new();
    /// findings.deny("latest", "`latest` only moves in the release job");
    /// assert!(findings.is_denied());
    /// ```
    pub fn deny(&mut self, tag: &str, reason: impl Into<String>) {
        self.denials.push(Finding { tag: Some(tag.to_string()), reason: reason.into() });
    }

    /// Refuse the request as a whole (no single tag is to blame).
    ///
    /// ```
    /// use tagpolicy_guest::{Decision, Finding, Findings};
    ///
    /// let mut findings = Findings::new();
    /// findings.deny_request("anonymous pushes are refused");
    /// let expected = Finding { tag: None, reason: "anonymous pushes are refused".into() };
    /// assert_eq!(findings.into_decision(), Decision::Deny(vec![expected]));
    /// ```
    pub fn deny_request(&mut self, reason: impl Into<String>) {
        self.denials.push(Finding { tag: None, reason: reason.into() });
    }

    /// Report something about `tag` without refusing.
    ///
    /// ```
    /// use tagpolicy_guest::{Decision, Findings};
    ///
    /// let mut findings = Findings::new();
    /// findings.warn("latest", "`latest` moves: consumers should pin a release");
    /// assert!(matches!(findings.into_decision(), Decision::Warn(_)));
    /// ```
    pub fn warn(&mut self, tag: &str, reason: impl Into<String>) {
        self.warnings.push(Finding { tag: Some(tag.to_string()), reason: reason.into() });
    }

    /// Report something about the request as a whole without refusing.
    ///
    /// ```
    /// use tagpolicy_guest::{Decision, Findings};
    ///
    /// let mut findings = Findings::new();
    /// findings.warn_request("pushed outside the release window");
    /// assert!(matches!(findings.into_decision(), Decision::Warn(w) if w[0].tag.is_none()));
    /// ```
    pub fn warn_request(&mut self, reason: impl Into<String>) {
        self.warnings.push(Finding { tag: None, reason: reason.into() });
    }

    /// Whether something was denied so far.
    ///
    /// ```
    /// use tagpolicy_guest::Findings;
    ///
    /// let mut findings = Findings::new();
    /// findings.warn("latest", "`latest` moves");
    /// assert!(!findings.is_denied());
    /// ```
    pub fn is_denied(&self) -> bool {
        !self.denials.is_empty()
    }

    /// The decision: the denials if any (warnings are then dropped), else the warnings, else
    /// [`Decision::Allow`]. What [`Policy::evaluate`](crate::Policy::evaluate) returns.
    ///
    /// ```
    /// use tagpolicy_guest::{Decision, Findings};
    ///
    /// let mut findings = Findings::new();
    /// findings.warn("latest", "`latest` moves");
    /// findings.deny("1.3.1", "no signature");
    /// let Decision::Deny(denials) = findings.into_decision() else { panic!() };
    /// assert_eq!(denials[0].reason, "no signature");
    /// ```
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
