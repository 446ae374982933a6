//! The Redis index's Lua scripts (in `scripts/`), each called through a type that names its
//! keys and arguments. Most take a repository's seven keys ([`RepositoryKeys`]) first, in the
//! order every script names them.

use super::redis::RepositoryKeys;
use crate::redis_link::ScriptCall;
use tagpolicy::Stamp;

/// See `scripts/status.lua`.
pub(super) struct Status<'a> {
    pub keys: &'a RepositoryKeys,
    pub max_dirty: usize,
}

impl ScriptCall for Status<'_> {
    const SOURCE: &'static str = include_str!("scripts/status.lua");
    /// State (`None`: no index), dirty tags, number of tags.
    type Reply = (Option<String>, Vec<String>, u64);

    fn keys(&self) -> Vec<&str> {
        self.keys.all()
    }

    fn args(&self) -> Vec<String> {
        vec![self.max_dirty.to_string()]
    }
}

/// See `scripts/begin_fill.lua`.
pub(super) struct BeginFill<'a> {
    pub keys: &'a RepositoryKeys,
    pub expiry: String,
}

impl ScriptCall for BeginFill<'_> {
    const SOURCE: &'static str = include_str!("scripts/begin_fill.lua");
    type Reply = i64;

    fn keys(&self) -> Vec<&str> {
        self.keys.all()
    }

    fn args(&self) -> Vec<String> {
        vec![self.expiry.clone()]
    }
}

/// See `scripts/fill_batch.lua`.
pub(super) struct FillBatch<'a> {
    pub keys: &'a RepositoryKeys,
    pub expiry: String,
    /// (tag, digest, version key) each.
    pub found: Vec<[String; 3]>,
}

impl ScriptCall for FillBatch<'_> {
    const SOURCE: &'static str = include_str!("scripts/fill_batch.lua");
    type Reply = i64;

    fn keys(&self) -> Vec<&str> {
        self.keys.all()
    }

    fn args(&self) -> Vec<String> {
        let mut args = Vec::with_capacity(1 + self.found.len() * 3);
        args.push(self.expiry.clone());
        args.extend(self.found.iter().flatten().cloned());
        args
    }
}

/// See `scripts/end_fill.lua`.
pub(super) struct EndFill<'a> {
    pub keys: &'a RepositoryKeys,
    pub repositories: &'a str,
    pub expiry: String,
    pub now_millis: u64,
    pub repository: &'a str,
}

impl ScriptCall for EndFill<'_> {
    const SOURCE: &'static str = include_str!("scripts/end_fill.lua");
    type Reply = i64;

    fn keys(&self) -> Vec<&str> {
        let mut keys = self.keys.all();
        keys.push(self.repositories);
        keys
    }

    fn args(&self) -> Vec<String> {
        vec![self.expiry.clone(), self.now_millis.to_string(), self.repository.to_string()]
    }
}

/// See `scripts/abandon_fill.lua`.
pub(super) struct AbandonFill<'a> {
    pub keys: &'a RepositoryKeys,
}

impl ScriptCall for AbandonFill<'_> {
    const SOURCE: &'static str = include_str!("scripts/abandon_fill.lua");
    type Reply = i64;

    fn keys(&self) -> Vec<&str> {
        self.keys.all()
    }

    fn args(&self) -> Vec<String> {
        Vec::new()
    }
}

/// See `scripts/mark_dirty.lua`.
pub(super) struct MarkDirty<'a> {
    pub keys: &'a RepositoryKeys,
    pub expiry: String,
    pub tags: &'a [String],
}

impl ScriptCall for MarkDirty<'_> {
    const SOURCE: &'static str = include_str!("scripts/mark_dirty.lua");
    type Reply = i64;

    fn keys(&self) -> Vec<&str> {
        self.keys.all()
    }

    fn args(&self) -> Vec<String> {
        let mut args = vec![self.expiry.clone()];
        args.extend(self.tags.iter().cloned());
        args
    }
}

/// One tag's change in an [`Apply`].
pub(super) struct TagWrite {
    pub tag: String,
    /// The tag's digest now; `None`: deleted.
    pub digest: Option<String>,
    pub version: String,
}

/// See `scripts/apply.lua`.
pub(super) struct Apply<'a> {
    pub keys: &'a RepositoryKeys,
    pub expiry: String,
    pub stamp: &'a Stamp,
    pub writes: Vec<TagWrite>,
}

impl ScriptCall for Apply<'_> {
    const SOURCE: &'static str = include_str!("scripts/apply.lua");
    type Reply = i64;

    fn keys(&self) -> Vec<&str> {
        self.keys.all()
    }

    fn args(&self) -> Vec<String> {
        let (has_actor, actor) = match &self.stamp.actor {
            Some(actor) => ("actor", actor.clone()),
            None => ("none", String::new()),
        };
        let mut args = vec![
            self.expiry.clone(),
            self.stamp.at.seconds.to_string(),
            self.stamp.at.nanoseconds.to_string(),
            has_actor.to_string(),
            actor,
        ];
        for write in &self.writes {
            let (operation, digest) = match &write.digest {
                Some(digest) => ("set", digest.clone()),
                None => ("del", String::new()),
            };
            args.extend([write.tag.clone(), operation.to_string(), digest, write.version.clone()]);
        }
        args
    }
}

/// See `scripts/correct.lua`.
pub(super) struct Correct<'a> {
    pub keys: &'a RepositoryKeys,
    pub tag: &'a str,
    pub version: String,
    /// What a lookup found; `None`: absent.
    pub digest: Option<&'a str>,
}

impl ScriptCall for Correct<'_> {
    const SOURCE: &'static str = include_str!("scripts/correct.lua");
    /// 1 when the index changed.
    type Reply = i64;

    fn keys(&self) -> Vec<&str> {
        self.keys.all()
    }

    fn args(&self) -> Vec<String> {
        let mut args = vec![self.tag.to_string(), self.version.clone()];
        args.extend(self.digest.map(str::to_string));
        args
    }
}

/// See `scripts/prune_listed.lua`.
pub(super) struct PruneListed<'a> {
    pub repositories: &'a str,
    /// Each sampled repository, and its `meta` key.
    pub sample: Vec<(String, String)>,
}

impl ScriptCall for PruneListed<'_> {
    const SOURCE: &'static str = include_str!("scripts/prune_listed.lua");
    /// How many left the list.
    type Reply = i64;

    fn keys(&self) -> Vec<&str> {
        let mut keys = vec![self.repositories];
        keys.extend(self.sample.iter().map(|(_, meta)| meta.as_str()));
        keys
    }

    fn args(&self) -> Vec<String> {
        self.sample.iter().map(|(repository, _)| repository.clone()).collect()
    }
}

/// See `scripts/claim_check.lua`.
pub(super) struct ClaimCheck<'a> {
    pub meta: &'a str,
    pub repositories: &'a str,
    pub repository: &'a str,
    pub now_millis: u64,
    pub due_millis: u64,
}

impl ScriptCall for ClaimCheck<'_> {
    const SOURCE: &'static str = include_str!("scripts/claim_check.lua");
    /// 1 when claimed.
    type Reply = i64;

    fn keys(&self) -> Vec<&str> {
        vec![self.meta, self.repositories]
    }

    fn args(&self) -> Vec<String> {
        vec![self.repository.to_string(), self.now_millis.to_string(), self.due_millis.to_string()]
    }
}
