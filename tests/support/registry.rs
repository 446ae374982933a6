//! Real parts for the gate's end-to-end tests: the CNCF distribution registry
//! (`docker-registry`), the `tagpolicy serve` binary in front of it, OCI image layouts
//! written by hand, and a small registry client over HTTP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(Instant::now() < deadline, "{what} did not become ready");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `docker-registry serve` on 127.0.0.1 with its storage in a temporary folder.
pub struct Registry {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl Registry {
    pub fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let mut registry = Registry { port: free_port(), dir, child: None };
        registry.restart();
        registry
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Start it again (same storage, same port) after [`Registry::stop`].
    pub fn restart(&mut self) {
        let config = self.dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog: {{level: warn}}\nstorage: {{filesystem: {{rootdirectory: {}}}, delete: {{enabled: true}}}}\nhttp: {{addr: 127.0.0.1:{}}}\n",
                self.dir.path().join("data").display(),
                self.port
            ),
        )
        .unwrap();
        let log = std::fs::File::create(self.dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("`docker-registry` (Debian package docker-registry) must be installed");
        self.child = Some(child);
        let url = format!("{}/v2/", self.url());
        wait_until("the registry", || ureq::get(&url).call().is_ok());
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `tagpolicy serve` in front of an upstream, on a free port.
pub struct Gate {
    pub dir: tempfile::TempDir,
    pub address: String,
    child: Child,
}

impl Gate {
    /// Start a gate whose configuration is `listen` + `upstream` + `rest` (YAML).
    pub fn start(upstream: &str, rest: &str) -> Gate {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("gate.yaml");
        std::fs::write(&config, Self::config_text(upstream, rest)).unwrap();
        let log = std::fs::File::create(dir.path().join("gate.log")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tagpolicy"))
            .args(["serve", "--config"])
            .arg(&config)
            .env("TAGPOLICY_CACHE_DIR", crate::common::workspace().join("target/test-cache"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let address = line
            .trim()
            .strip_prefix("tagpolicy gate listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line from the gate: {line:?}"))
            .to_string();
        Gate { dir, address, child }
    }

    pub fn config_text(upstream: &str, rest: &str) -> String {
        format!("listen: 127.0.0.1:0\nupstream: {upstream}\ndecision_log: decisions.jsonl\n{rest}")
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("gate.yaml")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gate.log")).unwrap_or_default()
    }

    pub fn decisions(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("decisions.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory of the gate process, in KiB (Linux `VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    pub fn hangup(&self) {
        let status = Command::new("kill").args(["-HUP", &self.pid().to_string()]).status().unwrap();
        assert!(status.success());
    }

    pub fn metrics(&self) -> String {
        ureq::get(&format!("{}/metrics", self.url())).call().unwrap().into_string().unwrap()
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The OCI image layout of one image (or an index of several) written by hand, under the
/// reference name `v`.
pub struct Layout {
    pub dir: PathBuf,
    /// The digest of the top manifest (or index).
    pub digest: String,
}

fn write_blob(dir: &Path, bytes: &[u8]) -> (String, usize) {
    let hex = sha256_hex(bytes);
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(blobs.join(&hex), bytes).unwrap();
    (format!("sha256:{hex}"), bytes.len())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

/// Bytes that do not compress, from a seed.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// A gzip'd tar holding one file of `size` bytes; (compressed, uncompressed digest).
fn layer(seed: u64, size: usize) -> (Vec<u8>, String) {
    let mut tar = tar::Builder::new(Vec::new());
    let data = noise(seed, size);
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, format!("file-{seed}"), data.as_slice()).unwrap();
    let tar = tar.into_inner().unwrap();
    let diff_id = format!("sha256:{}", sha256_hex(&tar));
    // Stored, not compressed: the data is noise, and a 100 MiB layer stays quick to write.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    gz.write_all(&tar).unwrap();
    (gz.finish().unwrap(), diff_id)
}

/// One image manifest in `dir`'s blobs; returns (digest, size).
fn write_image(dir: &Path, seed: u64, layer_size: usize, arch: &str) -> (String, usize) {
    let (layer, diff_id) = layer(seed, layer_size);
    let (layer_digest, layer_len) = write_blob(dir, &layer);
    let config = serde_json::json!({
        "architecture": arch, "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "config": {"Labels": {"seed": seed.to_string()}},
    });
    let (config_digest, config_len) = write_blob(dir, config.to_string().as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_len},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer_len}],
    });
    write_blob(dir, manifest.to_string().as_bytes())
}

fn finish_layout(dir: &Path, media_type: &str, digest: &str, size: usize) {
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": media_type, "digest": digest, "size": size,
                       "annotations": {"org.opencontainers.image.ref.name": "v"}}],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

impl Layout {
    /// A single-platform image whose content follows from `seed`.
    pub fn image(parent: &Path, seed: u64, layer_size: usize) -> Layout {
        let dir = parent.join(format!("image-{seed}"));
        let (digest, size) = write_image(&dir, seed, layer_size, "amd64");
        finish_layout(&dir, MANIFEST, &digest, size);
        Layout { dir, digest }
    }

    /// An index of an amd64 and an arm64 image.
    pub fn multi_arch(parent: &Path, seed: u64) -> Layout {
        let dir = parent.join(format!("index-{seed}"));
        let children: Vec<_> = [("amd64", seed), ("arm64", seed + 1)]
            .iter()
            .map(|(arch, seed)| {
                let (digest, size) = write_image(&dir, *seed, 1024, arch);
                serde_json::json!({"mediaType": MANIFEST, "digest": digest, "size": size,
                                   "platform": {"architecture": arch, "os": "linux"}})
            })
            .collect();
        let index =
            serde_json::json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": children});
        let (digest, size) = write_blob(&dir, index.to_string().as_bytes());
        finish_layout(&dir, INDEX, &digest, size);
        Layout { dir, digest }
    }

    pub fn oci_ref(&self) -> String {
        format!("oci:{}:v", self.dir.display())
    }
}

/// `skopeo copy [--all] oci:LAYOUT:v docker://ADDRESS/REFERENCE` over plain HTTP.
pub fn skopeo_copy(layout: &Layout, address: &str, reference: &str, all: bool) -> Output {
    let mut command = Command::new("skopeo");
    command.args(["copy", "--retry-times", "0", "--dest-tls-verify=false"]);
    if all {
        command.arg("--all");
    }
    command
        .arg(layout.oci_ref())
        .arg(format!("docker://{address}/{reference}"))
        .output()
        .expect("`skopeo` (Debian package skopeo) must be installed")
}

pub fn text(output: &Output) -> String {
    format!(
        "status: {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A response read whole, whatever its status.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

fn reply(result: Result<ureq::Response, ureq::Error>) -> Reply {
    let response = match result {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(error) => panic!("HTTP transport error: {error}"),
    };
    let status = response.status();
    let mut names = response.headers_names();
    names.sort();
    names.dedup();
    let headers = names
        .iter()
        .flat_map(|name| response.all(name).into_iter().map(move |v| (name.clone(), v.to_string())))
        .collect();
    Reply { status, headers, body: response.into_string().unwrap_or_default() }
}

/// Registry API calls, against the gate or the registry itself.
pub struct Client {
    pub base: String,
    agent: ureq::Agent,
}

impl Client {
    pub fn new(base: &str) -> Client {
        // A bounded wait: a gate that never answers fails the test instead of hanging it.
        let agent = ureq::AgentBuilder::new().redirects(0).timeout(Duration::from_secs(60)).build();
        Client { base: base.to_string(), agent }
    }

    pub fn put_manifest(&self, repository: &str, reference: &str, manifest: &[u8]) -> Reply {
        self.put_manifest_with(repository, reference, manifest, None)
    }

    /// A manifest PUT with an `Authorization` header, if given.
    pub fn put_manifest_with(
        &self,
        repository: &str,
        reference: &str,
        manifest: &[u8],
        authorization: Option<&str>,
    ) -> Reply {
        let mut request = self
            .agent
            .put(&format!("{}/v2/{repository}/manifests/{reference}", self.base))
            .set("Content-Type", MANIFEST);
        if let Some(authorization) = authorization {
            request = request.set("Authorization", authorization);
        }
        reply(request.send_bytes(manifest))
    }

    pub fn delete_manifest(&self, repository: &str, reference: &str) -> Reply {
        reply(
            self.agent
                .delete(&format!("{}/v2/{repository}/manifests/{reference}", self.base))
                .call(),
        )
    }

    pub fn digest_of(&self, repository: &str, reference: &str) -> Option<String> {
        let reply = reply(
            self.agent
                .head(&format!("{}/v2/{repository}/manifests/{reference}", self.base))
                .set("Accept", &format!("{MANIFEST}, {INDEX}"))
                .call(),
        );
        match reply.status {
            200 => reply.header_all("docker-content-digest").first().map(|d| d.to_string()),
            404 => None,
            other => panic!("HEAD {repository}:{reference}: HTTP {other}"),
        }
    }

    pub fn tags(&self, repository: &str) -> Vec<String> {
        let reply =
            reply(self.agent.get(&format!("{}/v2/{repository}/tags/list", self.base)).call());
        if reply.status == 404 {
            return Vec::new();
        }
        let mut tags: Vec<String> =
            serde_json::from_value(reply.json()["tags"].clone()).unwrap_or_default();
        tags.sort();
        tags
    }

    /// Upload `bytes` as a blob (monolithic upload); returns its digest.
    pub fn upload_blob(&self, repository: &str, bytes: &[u8]) -> String {
        let digest = format!("sha256:{}", sha256_hex(bytes));
        let start =
            reply(self.agent.post(&format!("{}/v2/{repository}/blobs/uploads/", self.base)).call());
        assert_eq!(start.status, 202, "{}", start.body);
        let location = start.header_all("location")[0].to_string();
        let location = if location.starts_with("http") {
            location
        } else {
            format!("{}{location}", self.base)
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let done = reply(
            self.agent
                .put(&format!("{location}{separator}digest={digest}"))
                .set("Content-Type", "application/octet-stream")
                .send_bytes(bytes),
        );
        assert_eq!(done.status, 201, "{}", done.body);
        digest
    }

    /// Upload a config and a layer and return a manifest over them that `label` makes unique
    /// (through an annotation), with its digest.
    pub fn image_manifest(&self, repository: &str, label: &str) -> (Vec<u8>, String) {
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let config_digest = self.upload_blob(repository, config);
        let layer = b"layer";
        let layer_digest = self.upload_blob(repository, layer);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer.len()}],
            "annotations": {"label": label},
        })
        .to_string()
        .into_bytes();
        let digest = format!("sha256:{}", sha256_hex(&manifest));
        (manifest, digest)
    }
}

/// A response to a request written by hand.
#[derive(Debug)]
pub struct RawReply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// Send `method target` exactly as written (no client library in between, which would
/// normalize the target), with `headers` and `body`, over a new connection; read the answer
/// until the server closes it (at most 30 s).
pub fn raw_request(
    address: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawReply {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    RawReply { status, head: head.to_string(), body: body.to_string() }
}

impl Client {
    /// Every tag of `repository` with its digest.
    pub fn tag_map(&self, repository: &str) -> std::collections::BTreeMap<String, String> {
        self.tags(repository)
            .into_iter()
            .filter_map(|tag| Some((tag.clone(), self.digest_of(repository, &tag)?)))
            .collect()
    }
}
