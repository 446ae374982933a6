//! Which rule governs a repository: the globs of every rule in one set, matched in one pass
//! over the name however many rules there are; the first rule listed that matches wins.

use globset::{Glob, GlobSet, GlobSetBuilder};

/// The repository globs of all rules, in the order the rules are listed.
pub(crate) struct RuleMatcher {
    globs: GlobSet,
    /// The rule each glob of `globs` belongs to, by the glob's index.
    rule_of_glob: Vec<usize>,
}

impl RuleMatcher {
    /// `rules` lists each rule's globs, in order.
    pub(crate) fn new(rules: Vec<Vec<Glob>>) -> Result<Self, globset::Error> {
        let mut globs = GlobSetBuilder::new();
        let mut rule_of_glob = Vec::new();
        for (rule, rule_globs) in rules.into_iter().enumerate() {
            for glob in rule_globs {
                globs.add(glob);
                rule_of_glob.push(rule);
            }
        }
        Ok(Self { globs: globs.build()?, rule_of_glob })
    }

    /// The index of the first rule with a glob matching `repository`.
    pub(crate) fn rule_for(&self, repository: &str) -> Option<usize> {
        // Globs were added rule by rule, so the lowest glob index is the first rule.
        self.globs.matches(repository).into_iter().min().map(|glob| self.rule_of_glob[glob])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(rules: &[&[&str]]) -> RuleMatcher {
        let glob = |text: &str| globset::GlobBuilder::new(text).literal_separator(true).build();
        RuleMatcher::new(
            rules.iter().map(|globs| globs.iter().map(|g| glob(g).unwrap()).collect()).collect(),
        )
        .unwrap()
    }

    #[test]
    fn the_first_listed_rule_that_matches_wins() {
        let rules = matcher(&[&["team/app"], &["other/*", "team/**"], &["**"]]);
        assert_eq!(rules.rule_for("team/app"), Some(0));
        assert_eq!(rules.rule_for("team/app/sub"), Some(1));
        assert_eq!(rules.rule_for("other/x"), Some(1));
        assert_eq!(rules.rule_for("library/x"), Some(2));
        assert_eq!(matcher(&[&["team/*"]]).rule_for("team/a/b"), None);
    }

    #[test]
    fn thousands_of_rules_keep_their_order() {
        // A catch-all at the end and literal, prefix and wildcard globs before it.
        let owned: Vec<Vec<String>> = (0..3000)
            .map(|n| match n % 3 {
                0 => vec![format!("team{n}/app")],
                1 => vec![format!("team{n}/**")],
                _ => vec![format!("team{n}/*-cache"), format!("mirror/team{n}/*")],
            })
            .chain([vec!["**".to_string()]])
            .collect();
        let borrowed: Vec<Vec<&str>> =
            owned.iter().map(|globs| globs.iter().map(String::as_str).collect()).collect();
        let slices: Vec<&[&str]> = borrowed.iter().map(Vec::as_slice).collect();
        let rules = matcher(&slices);
        assert_eq!(rules.rule_for("team0/app"), Some(0));
        assert_eq!(rules.rule_for("team2998/app"), Some(2998));
        assert_eq!(rules.rule_for("team2996/x-cache"), Some(2996));
        assert_eq!(rules.rule_for("mirror/team2999/x"), Some(2999));
        assert_eq!(rules.rule_for("team2997/deep/name"), Some(3000));
        assert_eq!(rules.rule_for("mirror/team2998/x"), Some(3000));
    }
}
