//! Compiled components on disk, so that a policy is compiled once per version and engine,
//! not at every start. A cache entry is named by the component's sha256 and a hash of the
//! engine's compatibility settings; only files this cache wrote, under those names, are
//! ever deserialized.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use wasmtime::component::Component;

/// A directory of precompiled components. It must be writable only by the operator:
/// deserializing a compiled component trusts its contents.
#[derive(Debug, Clone)]
pub(crate) struct CompileCache {
    dir: PathBuf,
    engine_key: String,
}

impl CompileCache {
    pub(crate) fn new(dir: PathBuf, engine: &wasmtime::Engine) -> Self {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        Self { dir, engine_key: format!("{:016x}", hasher.finish()) }
    }

    fn entry(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key))
    }

    /// The cached compilation of the component with `sha256`, if there is a usable one.
    pub(crate) fn get(&self, engine: &wasmtime::Engine, sha256: &str) -> Option<Component> {
        let path = self.entry(sha256);
        // Read, not mmap: a mapped file that someone truncates in place would crash the
        // process (SIGBUS) on its next page fault; a copy cannot be changed under us.
        // Mapping halved the load (criterion: 1.16 ms -> 0.54 ms) but the compile cache
        // test, which damages an entry in place, then died of SIGBUS.
        let bytes = std::fs::read(&path).ok()?;
        // SAFETY: the file is named by the component's hash and this engine's key and was
        // written by `put` below into the operator's cache directory; wasmtime also checks
        // that it was compiled for a compatible engine and refuses it otherwise.
        match unsafe { Component::deserialize(engine, &bytes) } {
            Ok(component) => Some(component),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "ignoring an unusable compile cache entry");
                None
            }
        }
    }

    /// Store `component`; failures only cost a compilation next time, so they are logged.
    pub(crate) fn put(&self, sha256: &str, component: &Component) {
        if let Err(error) = self.try_put(sha256, component) {
            tracing::warn!(dir = %self.dir.display(), %error, "cannot write the compile cache");
        }
    }

    fn try_put(&self, sha256: &str, component: &Component) -> anyhow::Result<()> {
        let bytes = component.serialize()?;
        std::fs::create_dir_all(&self.dir)?;
        // Write beside the entry, then rename: readers never see a half-written file.
        let mut file = tempfile::NamedTempFile::new_in(&self.dir)?;
        file.write_all(&bytes)?;
        file.persist(self.entry(sha256))?;
        Ok(())
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}
