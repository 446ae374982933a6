//! The content-addressed cache of blobs and tag resolutions.

use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime};

use tagpolicy::Digest;
use tagpolicy_oci::Reference;
use tagpolicy_oci::cache::{Cache, CacheError};

#[test]
fn missing_directory_is_created_on_first_write() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("not/yet/there"));
    let digest = Digest::of(b"policy");
    assert_eq!(cache.get(&digest).unwrap(), None);
    assert!(!cache.dir().exists(), "reading creates nothing");
    assert_eq!(cache.put(b"policy").unwrap(), digest);
    assert!(cache.blob_path(&digest).is_file());
    assert_eq!(cache.get(&digest).unwrap().as_deref(), Some(&b"policy"[..]));
    // Another handle on the same directory (a restarted gate) finds it.
    let again = Cache::new(dir.path().join("not/yet/there"));
    assert_eq!(again.get(&digest).unwrap().as_deref(), Some(&b"policy"[..]));
}

#[test]
fn corrupt_entry_is_absent_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path());
    let digest = cache.put(b"the real component").unwrap();
    std::fs::write(cache.blob_path(&digest), b"the real componenT").unwrap();
    assert_eq!(cache.get(&digest).unwrap(), None);
    assert!(!cache.blob_path(&digest).exists(), "the corrupt blob is removed");
    // A truncated one too, and the right bytes can be written again.
    cache.put(b"the real component").unwrap();
    std::fs::write(cache.blob_path(&digest), b"").unwrap();
    assert_eq!(cache.get(&digest).unwrap(), None);
    cache.put(b"the real component").unwrap();
    assert!(cache.get(&digest).unwrap().is_some());
}

#[test]
fn put_expecting_refuses_bytes_of_another_digest() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path());
    let expected = Digest::of(b"pinned");
    let err = cache.put_expecting(&expected, b"tampered").unwrap_err();
    assert!(matches!(err, CacheError::Mismatch { .. }), "{err}");
    assert!(!cache.blob_path(&expected).exists());
    cache.put_expecting(&expected, b"pinned").unwrap();
    assert!(cache.get(&expected).unwrap().is_some());
}

#[test]
fn concurrent_writers_of_one_digest_never_expose_a_partial_blob() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("cache"));
    let blob: Arc<Vec<u8>> = Arc::new((0..4 << 20).map(|i| (i * 31 % 251) as u8).collect());
    let digest = Digest::of(&blob);
    let writers = 6;
    let readers = 3;
    let barrier = Arc::new(Barrier::new(writers + readers));
    let mut threads = Vec::new();
    for _ in 0..writers {
        let (cache, blob, barrier) = (cache.clone(), blob.clone(), barrier.clone());
        threads.push(std::thread::spawn(move || {
            barrier.wait();
            for _ in 0..5 {
                assert_eq!(cache.put(&blob).unwrap(), digest);
            }
        }));
    }
    for _ in 0..readers {
        let (cache, blob, barrier) = (cache.clone(), blob.clone(), barrier.clone());
        threads.push(std::thread::spawn(move || {
            barrier.wait();
            let mut seen = false;
            for _ in 0..40 {
                match cache.get(&digest).unwrap() {
                    Some(bytes) => {
                        assert!(bytes == *blob);
                        seen = true;
                    }
                    // Once a whole blob was there, it stays there.
                    None => assert!(!seen, "a cached blob vanished while being rewritten"),
                }
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(cache.get(&digest).unwrap().as_deref(), Some(&blob[..]));
    let leftovers: Vec<_> = std::fs::read_dir(cache.blob_path(&digest).parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, [std::ffi::OsString::from(digest.hex())], "no temporary files left");
}

#[test]
fn tag_resolutions_are_recorded_with_their_time() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("c"));
    let tag = Reference::parse("oci://127.0.0.1:5000/policies/floor:stable").unwrap();
    let other = Reference::parse("oci://127.0.0.1:5000/policies/floor:1.0").unwrap();
    assert_eq!(cache.resolution(&tag).unwrap(), None);
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000);
    let first = Digest::of(b"v1");
    cache.record_resolution(&tag, &first, at).unwrap();
    cache.record_resolution(&other, &first, at).unwrap();
    let reread = Cache::new(dir.path().join("c"));
    let r = reread.resolution(&tag).unwrap().unwrap();
    assert_eq!((r.digest, r.resolved_at), (first, at));

    // The tag moved: the newer resolution replaces it; the other tag keeps its own.
    let second = Digest::of(b"v2");
    let later = at + Duration::from_secs(60);
    cache.record_resolution(&tag, &second, later).unwrap();
    let r = reread.resolution(&tag).unwrap().unwrap();
    assert_eq!((r.digest, r.resolved_at), (second, later));
    assert_eq!(reread.resolution(&other).unwrap().unwrap().digest, first);

    // The same tag with a digest in the reference is the same record.
    let pinned = tag.with_digest(second);
    assert_eq!(reread.resolution(&pinned).unwrap().unwrap().digest, second);
    let digest_only =
        Reference::parse(&format!("oci://127.0.0.1:5000/policies/floor@{second}")).unwrap();
    assert!(matches!(cache.resolution(&digest_only), Err(CacheError::NoTag(_))));

    let text = std::fs::read_to_string(dir.path().join("c/tags.json")).unwrap();
    assert!(text.contains("127.0.0.1:5000/policies/floor:stable"), "{text}");
    assert!(text.contains(r#""resolved_at": "2026-05-28T20:26:40Z""#), "{text}");
}

#[test]
fn corrupt_tag_record_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path());
    std::fs::write(dir.path().join("tags.json"), b"{not json").unwrap();
    let tag = Reference::parse("oci://registry.example.com/p:1").unwrap();
    let err = cache.resolution(&tag).unwrap_err();
    assert!(matches!(err, CacheError::Record { .. }), "{err}");
    assert!(err.to_string().contains("tags.json"), "{err}");
}

#[cfg(unix)]
#[test]
fn a_record_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode();
    let chmod = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("policies"));
    let reference = Reference::parse("oci://r.example.com/p/floor:stable").unwrap();
    let digest = Digest::of(b"v1");
    cache.record_version(&reference, &digest, Some("1.0.0"), SystemTime::now()).unwrap();
    assert_eq!(mode(cache.dir()) & 0o777, 0o700, "the cache directory is created private");
    let record = cache.dir().join("tags.json");
    assert_eq!(mode(&record) & 0o077, 0, "the record is private");
    assert_eq!(cache.resolution(&reference).unwrap().unwrap().version.as_deref(), Some("1.0.0"));

    chmod(cache.dir(), 0o777);
    let error = cache.resolution(&reference).unwrap_err();
    assert!(matches!(error, CacheError::Untrusted { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("the cache directory") && message.contains("writable by other users"),
        "{message}"
    );
    let error = cache.record_resolution(&reference, &digest, SystemTime::now()).unwrap_err();
    assert!(matches!(error, CacheError::Untrusted { .. }), "writing reads first: {error}");

    chmod(cache.dir(), 0o700);
    chmod(&record, 0o664);
    let message = cache.resolution(&reference).unwrap_err().to_string();
    assert!(message.contains("the record") && message.contains("mode 664"), "{message}");
    chmod(&record, 0o600);
    assert!(cache.resolution(&reference).unwrap().is_some());
}
