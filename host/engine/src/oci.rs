//! The OCI distribution grammar for the names a request carries. Errors say what is wrong
//! with the value, for messages such as "tags\[1\]: `1.2.x!` is not a valid tag: ...".

use regex::Regex;
use std::sync::LazyLock;

static TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$").unwrap());
static REPOSITORY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$",
    )
    .unwrap()
});

/// Longest repository name accepted (the spec's practical limit with a registry host name).
pub const MAX_REPOSITORY_BYTES: usize = 255;

/// A tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<(), String> {
    if TAG.is_match(tag) {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a valid tag: a tag is 1 to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`",
            shown(tag)
        ))
    }
}

/// A repository name such as `team/app`: lowercase path components separated by `/`.
pub fn check_repository(name: &str) -> Result<(), String> {
    if name.len() <= MAX_REPOSITORY_BYTES && REPOSITORY.is_match(name) {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a valid repository name: use lowercase letters and digits, separated by `.`, `_`, `__`, `-` or `/`, at most {MAX_REPOSITORY_BYTES} bytes",
            shown(name)
        ))
    }
}

/// A digest `sha256:<64 lowercase hex>` (or `sha512:<128 hex>`).
pub fn check_digest(digest: &str) -> Result<(), String> {
    let ok = match digest.split_once(':') {
        Some(("sha256", hex)) => is_lower_hex(hex, 64),
        Some(("sha512", hex)) => is_lower_hex(hex, 128),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a valid digest: expected `sha256:` followed by 64 lowercase hex digits",
            shown(digest)
        ))
    }
}

fn is_lower_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// User input echoed in an error, cut so that a megabyte of garbage stays one line (long
/// enough for a request path with a digest).
pub fn shown(text: &str) -> String {
    let mut cut: String = text.chars().take(120).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut.escape_debug().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        for ok in ["latest", "1.2.3", "_x", "A-b.c_d", &"a".repeat(128)] {
            assert!(check_tag(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".hidden", "-x", "a/b", "a:b", "tag!", &"a".repeat(129), "ünï"] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn repositories() {
        for ok in ["app", "team/app", "a.b_c__d--e/f-0", "library/ubuntu"] {
            assert!(check_repository(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Team/app", "team//app", "/app", "app/", "a..b", "a___b", "-a"] {
            assert!(check_repository(bad).is_err(), "{bad}");
        }
        assert!(check_repository(&"a".repeat(256)).is_err());
    }

    #[test]
    fn digests() {
        assert!(check_digest(&format!("sha256:{}", "0a".repeat(32))).is_ok());
        assert!(check_digest(&format!("sha512:{}", "f".repeat(128))).is_ok());
        for bad in ["sha256:abc", "md5:0000", &format!("sha256:{}", "A".repeat(64)), "app-1210", ""]
        {
            assert!(check_digest(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn echoed_input_is_bounded_and_escaped() {
        let err = check_tag(&format!("{}\n", "x".repeat(1000))).unwrap_err();
        assert!(err.len() < 300, "{err}");
        assert!(!err.contains('\n'));
    }
}
