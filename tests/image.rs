//! The container image: `deploy/image/build` assembles it from the release binary, and a
//! podman of its own (storage in a temporary folder) runs it the way deploy/ does: a
//! read-only root file system, user 65532, a tmpfs for the compile cache, the configuration
//! mounted read-only. In front of docker-registry it decides a push, and on SIGTERM it exits 0.

mod common;
#[path = "support/registry.rs"]
mod registry;

use registry::{Client, Registry, free_port};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// podman with its storage, runtime state and events under `dir`, and the settings this kind
/// of machine needs: `runc` (crun refuses the hybrid cgroup layout), `cgroupfs`, and open-file
/// limits within the caller's hard limit.
struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    fn new() -> Podman {
        Podman { dir: tempfile::tempdir().unwrap() }
    }

    fn run(&self, args: &[&str]) -> Output {
        let dir = self.dir.path();
        Command::new("podman")
            .arg("--root")
            .arg(dir.join("storage"))
            .arg("--runroot")
            .arg(dir.join("run"))
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
            .args(["--events-backend", "file", "--runtime", "runc"])
            .args(args)
            .output()
            .expect("podman is installed by tests/setup")
    }

    /// `podman run ARGS`, with open-file and process limits within this machine's hard limits
    /// (podman's defaults exceed them, and the runtime may not raise them).
    fn run_container(&self, args: &[&str]) -> Output {
        let limits = ["run", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"];
        self.run(&[&limits[..], args].concat())
    }

    /// `run` that must succeed; its stdout, trimmed.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(output.status.success(), "podman {args:?}: {}", registry::text(&output));
        String::from_utf8(output.stdout).unwrap().trim().to_string()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "--all", "--force", "--time", "0"]);
    }
}

/// `GET http://127.0.0.1:port/path`: its status, or `None` if nothing answers.
fn probe(port: u16, path: &str) -> Option<u16> {
    match ureq::get(&format!("http://127.0.0.1:{port}{path}")).call() {
        Ok(reply) => Some(reply.status()),
        Err(ureq::Error::Status(status, _)) => Some(status),
        Err(_) => None,
    }
}

fn status_line(pid: &str, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find(|l| l.starts_with(field)).unwrap().to_string()
}

#[test]
fn the_image_runs_as_a_read_only_gate_decides_a_push_and_stops_cleanly() {
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("tagpolicy.tar");
    let built = Command::new(common::workspace().join("deploy/image/build"))
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_tagpolicy"))
        .arg("--output")
        .arg(&archive)
        .args(["--tag", "tagpolicy:test"])
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", registry::text(&built));
    let archive_bytes = std::fs::metadata(&archive).unwrap().len();

    let podman = Podman::new();
    podman.ok(&["load", "--quiet", "--input", archive.to_str().unwrap()]);
    let config = podman.ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Config.User}} {{.Config.Env}} {{.Config.StopSignal}}",
        "tagpolicy:test",
    ]);
    assert!(config.starts_with("65532:65532 "), "{config}");
    assert!(config.contains("TAGPOLICY_CACHE_DIR=/var/cache/tagpolicy"), "{config}");
    assert!(config.ends_with("SIGTERM"), "{config}");
    let image_size = podman.ok(&["image", "inspect", "--format", "{{.Size}}", "tagpolicy:test"]);
    // Nothing but the gate: no shell to run.
    let shell =
        podman.run_container(&["--rm", "--entrypoint", "/bin/sh", "tagpolicy:test", "-c", "true"]);
    let why = registry::text(&shell);
    assert!(!shell.status.success(), "the image has a shell");
    assert!(why.contains("/bin/sh") && why.contains("no such file or directory"), "{why}");

    let registry = Registry::start();
    let (port, admin) = (free_port(), free_port());
    let conf = work.path().join("conf");
    std::fs::create_dir(&conf).unwrap();
    std::fs::write(
        conf.join("gate.yaml"),
        format!(
            "listen: 127.0.0.1:{port}\nupstream: {}\nadmin_listen: 127.0.0.1:{admin}\n\
             rules:\n  - repositories: [\"team/**\"]\n    policies:\n      - policy: immutable-tags\n",
            registry.url()
        ),
    )
    .unwrap();
    let started = Instant::now();
    let mount = format!("{}:/etc/tagpolicy:ro", conf.display());
    let run = podman.run_container(&[
        "--detach",
        "--name",
        "gate",
        "--network",
        "host",
        "--read-only",
        "--tmpfs",
        "/var/cache/tagpolicy:rw,size=256m,U",
        "--volume",
        &mount,
        "tagpolicy:test",
    ]);
    assert!(run.status.success(), "{}", registry::text(&run));
    while probe(admin, "/readyz") != Some(200) {
        let logs = podman.run(&["logs", "gate"]);
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never ready: {}",
            registry::text(&logs)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let ready_after = started.elapsed();

    // Runs as 65532 on a read-only root.
    let pid = podman.ok(&["inspect", "--format", "{{.State.Pid}}", "gate"]);
    let uid = status_line(&pid, "Uid:");
    assert_eq!(uid.split_whitespace().nth(1), Some("65532"), "{uid}");
    assert_eq!(
        podman.ok(&["inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", "gate"]),
        "true"
    );
    let at_rest = status_line(&pid, "VmRSS:");

    // A push decided: a release tag is set once, and cannot move.
    let direct = Client::new(&registry.url());
    let through = Client::new(&format!("http://127.0.0.1:{port}"));
    let (first, digest) = direct.image_manifest("team/app", "first");
    let (second, _) = direct.image_manifest("team/app", "second");
    let reply = through.put_manifest("team/app", "1.0.0", &first);
    assert_eq!(reply.status, 201, "{}", reply.body);
    let moved = through.put_manifest("team/app", "1.0.0", &second);
    assert_eq!(moved.status, 409, "{}", moved.body);
    assert!(moved.body.contains("immutable"), "{}", moved.body);
    assert_eq!(direct.digest_of("team/app", "1.0.0"), Some(digest));

    // SIGTERM (the image's stop signal): exit 0.
    let stopping = Instant::now();
    podman.ok(&["stop", "--time", "30", "gate"]);
    let stopped_after = stopping.elapsed();
    assert_eq!(podman.ok(&["inspect", "--format", "{{.State.ExitCode}}", "gate"]), "0");
    let logs = registry::text(&podman.run(&["logs", "gate"]));
    assert!(logs.contains("\"stopped\""), "{logs}");
    println!(
        "image: {archive_bytes} bytes as a compressed OCI archive, {image_size} bytes unpacked; \
         ready {ready_after:?} after `podman run`; {at_rest} at rest; stopped (exit 0) \
         {stopped_after:?} after `podman stop`"
    );
}
