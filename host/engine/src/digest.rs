//! Content digests: `sha256:` followed by 64 lowercase hex digits, the only algorithm policies
//! are pinned with and the only one the gate matches tags against.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// Why a string is not a `sha256:` digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// The string has no `algorithm:` part.
    #[error("`{0}` is not a digest: it must look like `sha256:` followed by 64 hex digits")]
    Malformed(String),
    /// An algorithm other than sha256.
    #[error("digest `{input}` uses algorithm `{algorithm}`: only `sha256` is supported")]
    Algorithm {
        /// The string as given.
        input: String,
        /// The part before the colon.
        algorithm: String,
    },
    /// The encoded part is not 64 lowercase hex digits.
    #[error("digest `{0}` must have exactly 64 lowercase hex digits after `sha256:`")]
    Encoded(String),
}

/// A sha256 content digest, shown as `sha256:<64 hex>`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64 lowercase hex digits, without the `sha256:` prefix.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `bytes` hash to this digest.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        Self::of(bytes) == *self
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((algorithm, encoded)) = s.split_once(':') else {
            return Err(DigestError::Malformed(s.to_owned()));
        };
        if algorithm != "sha256" {
            // The spec's algorithm grammar: [a-z0-9]+([+._-][a-z0-9]+)*
            return Err(if algorithm.is_empty() {
                DigestError::Malformed(s.to_owned())
            } else {
                DigestError::Algorithm { input: s.to_owned(), algorithm: algorithm.to_owned() }
            });
        }
        let hex = encoded.as_bytes();
        if hex.len() != 64 || !hex.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(DigestError::Encoded(s.to_owned()));
        }
        let mut out = [0u8; 32];
        for (i, pair) in hex.chunks_exact(2).enumerate() {
            out[i] = (nibble(pair[0]) << 4) | nibble(pair[1]);
        }
        Ok(Self(out))
    }
}

fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        _ => c - b'a' + 10,
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_round_trips_and_matches_sha256sum() {
        // sha256("abc"), as printed by `printf abc | sha256sum`.
        let d = Digest::of(b"abc");
        let s = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(d.to_string(), s);
        assert_eq!(s.parse::<Digest>().unwrap(), d);
        assert!(d.matches(b"abc"));
        assert!(!d.matches(b"abd"));
    }

    #[test]
    fn digest_rejects_other_algorithms_and_bad_hex() {
        let upper = format!("sha256:{}", "A".repeat(64));
        let short = format!("sha256:{}", "a".repeat(63));
        assert!(matches!(
            format!("sha512:{}", "a".repeat(128)).parse::<Digest>(),
            Err(DigestError::Algorithm { .. })
        ));
        assert!(matches!(upper.parse::<Digest>(), Err(DigestError::Encoded(_))));
        assert!(matches!(short.parse::<Digest>(), Err(DigestError::Encoded(_))));
        assert!(matches!("abc".parse::<Digest>(), Err(DigestError::Malformed(_))));
    }
}
