//! A content-addressed on-disk cache: blobs under `blobs/sha256/<hex>`, and a record of tag
//! resolutions (`tags.json`: `registry/repository:tag` → digest and when it was resolved), so
//! that a policy pinned by digest, once fetched, never needs the network again.
//!
//! Blobs are written to a temporary file in the same directory and renamed into place, so a
//! reader sees a whole blob or none, and writers of the same digest do not disturb each other.
//! Every read re-hashes the blob; one that does not match its digest is removed and reported
//! as absent.
//!
//! Blobs are checked against their digests, but the tag record is trusted: it holds the
//! versions below which a followed tag may not move. So directories are created private
//! (0700), and a record that another user owns or could write (it, or the cache directory)
//! is refused rather than read.
//!
//! ```
//! use tagpolicy_oci::cache::Cache;
//! # let dir = tempfile::tempdir()?;
//! let cache = Cache::new(dir.path().join("policies"));
//! let digest = cache.put(b"component bytes")?;
//! assert_eq!(cache.get(&digest)?.as_deref(), Some(&b"component bytes"[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::reference::Reference;
use tagpolicy::Digest;

/// A cache operation that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    #[error("cache `{path}`: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("blob does not match digest `{expected}` (its digest is `{found}`): not cached")]
    Mismatch { expected: Digest, found: Digest },
    #[error("tag record `{path}` is not valid: {source}")]
    Record {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("reference `{0}` names no tag: only tag resolutions are recorded")]
    NoTag(String),
    #[error(
        "tag record `{path}` is not trusted: {why}; the versions it holds guard against rollbacks (make the cache directory private to the gate's user, or configure another `cache`)"
    )]
    Untrusted { path: PathBuf, why: String },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> CacheError + '_ {
    move |source| CacheError::Io { path: path.to_owned(), source }
}

/// A tag resolved to a digest at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub digest: Digest,
    /// When the tag was resolved (to the second).
    pub resolved_at: SystemTime,
    /// The version the artifact carried, when recorded.
    pub version: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct RecordEntry {
    digest: Digest,
    resolved_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<String>,
}

const RECORD: &str = "tags.json";

/// The cache in one directory (created on first write).
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// A cache in `dir`; nothing is touched until the first write.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn blobs(&self) -> PathBuf {
        self.dir.join("blobs").join("sha256")
    }

    /// Where the blob with `digest` is kept.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs().join(digest.hex())
    }

    /// The blob with `digest`, if it is cached and intact. A blob whose bytes no longer hash
    /// to its digest is removed and reported as absent.
    pub fn get(&self, digest: &Digest) -> Result<Option<Vec<u8>>, CacheError> {
        let path = self.blob_path(digest);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&path)(e)),
        };
        if digest.matches(&bytes) {
            return Ok(Some(bytes));
        }
        match fs::remove_file(&path) {
            Ok(()) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&path)(e)),
        }
    }

    /// Stores `bytes` under their digest and returns it.
    pub fn put(&self, bytes: &[u8]) -> Result<Digest, CacheError> {
        let digest = Digest::of(bytes);
        self.write_blob(&digest, bytes)?;
        Ok(digest)
    }

    /// Stores `bytes`, which must hash to `expected` (as fetched by that digest).
    pub fn put_expecting(&self, expected: &Digest, bytes: &[u8]) -> Result<(), CacheError> {
        let found = Digest::of(bytes);
        if found != *expected {
            return Err(CacheError::Mismatch { expected: *expected, found });
        }
        self.write_blob(expected, bytes)
    }

    fn write_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), CacheError> {
        let dir = self.blobs();
        write_atomically(&dir, &self.blob_path(digest), bytes)
    }

    fn record_path(&self) -> PathBuf {
        self.dir.join(RECORD)
    }

    fn read_record(&self) -> Result<BTreeMap<String, RecordEntry>, CacheError> {
        let path = self.record_path();
        check_private(&self.dir, &path)?;
        match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| CacheError::Record { path, source })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(io_error(&path)(e)),
        }
    }

    fn tag_key(reference: &Reference) -> Result<String, CacheError> {
        let tag = reference.tag().ok_or_else(|| CacheError::NoTag(reference.to_string()))?;
        Ok(format!("{}:{tag}", reference.name()))
    }

    /// Records that the tag of `reference` resolved to `digest` at `at`. Writers in one
    /// process should be serialised by the caller: two processes recording at once may lose
    /// one of the two updates (never corrupt the file).
    pub fn record_resolution(
        &self,
        reference: &Reference,
        digest: &Digest,
        at: SystemTime,
    ) -> Result<(), CacheError> {
        self.record_version(reference, digest, None, at)
    }

    /// Like [`Cache::record_resolution`], also recording the artifact's `version`.
    pub fn record_version(
        &self,
        reference: &Reference,
        digest: &Digest,
        version: Option<&str>,
        at: SystemTime,
    ) -> Result<(), CacheError> {
        let key = Self::tag_key(reference)?;
        let mut record = self.read_record()?;
        record.insert(
            key,
            RecordEntry {
                digest: *digest,
                resolved_at: humantime::format_rfc3339_seconds(at).to_string(),
                version: version.map(str::to_owned),
            },
        );
        let bytes = serde_json::to_vec_pretty(&record).expect("record serialises");
        write_atomically(&self.dir, &self.record_path(), &bytes)
    }

    /// The last recorded resolution of the tag of `reference`, if any.
    pub fn resolution(&self, reference: &Reference) -> Result<Option<Resolution>, CacheError> {
        let key = Self::tag_key(reference)?;
        let path = self.record_path();
        let Some(entry) = self.read_record()?.remove(&key) else {
            return Ok(None);
        };
        let resolved_at =
            humantime::parse_rfc3339(&entry.resolved_at).map_err(|e| CacheError::Record {
                path,
                source: serde::de::Error::custom(format!("`{}`: {e}", entry.resolved_at)),
            })?;
        Ok(Some(Resolution { digest: entry.digest, resolved_at, version: entry.version }))
    }
}

/// Writes `bytes` to a new temporary file in `dir` (created if missing), flushes it and renames
/// it to `path`.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), CacheError> {
    create_private_dir_all(dir).map_err(io_error(dir))?;
    let mut file =
        tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir).map_err(io_error(dir))?;
    file.write_all(bytes).map_err(io_error(file.path()))?;
    file.as_file().sync_all().map_err(io_error(path))?;
    file.persist(path).map_err(|e| io_error(path)(e.error))?;
    Ok(())
}

fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Refuses a record (if there is one) that another user owns or can write, or that sits in
/// such a directory: whoever can write it can choose the versions a tag may not go below,
/// and the pins a gate starts from when the registry is down.
fn check_private(dir: &Path, record: &Path) -> Result<(), CacheError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let meta = match fs::metadata(record) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_error(record)(e)),
        };
        // The process's user: the owner of /proc/self (Linux); elsewhere only modes are checked.
        let me = fs::metadata("/proc/self").ok().map(|m| m.uid());
        let untrusted = |why: String| CacheError::Untrusted { path: record.to_owned(), why };
        for (what, path, meta) in [
            ("the record", record, meta),
            ("the cache directory", dir, fs::metadata(dir).map_err(io_error(dir))?),
        ] {
            if meta.mode() & 0o022 != 0 {
                return Err(untrusted(format!(
                    "{what} `{}` is writable by other users (mode {:o})",
                    path.display(),
                    meta.mode() & 0o7777
                )));
            }
            if let Some(me) = me.filter(|&me| me != meta.uid()) {
                return Err(untrusted(format!(
                    "{what} `{}` belongs to user {}, not to this process's user {me}",
                    path.display(),
                    meta.uid()
                )));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (dir, record);
    Ok(())
}
