//! Real parts for the gate's end-to-end tests: the CNCF distribution registry
//! (`docker-registry`), the `tagpolicy serve` binary in front of it, OCI image layouts
//! written by hand, and a small registry client over HTTP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";

pub fn free_port() -> u16 {
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
    /// Serve HTTPS with this certificate and key (PEM files).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Require bearer tokens from this token server.
    pub token_auth: Option<TokenAuth>,
    /// With `tls`: require a client certificate signed by this CA (PEM file).
    pub client_ca: Option<PathBuf>,
    /// More of the registry's configuration (YAML), e.g. `notifications`.
    pub extra_config: String,
    child: Option<Child>,
}

/// distribution's `auth: token` settings.
#[derive(Clone)]
pub struct TokenAuth {
    pub realm: String,
    pub service: String,
    pub issuer: String,
    /// PEM certificates whose keys may sign tokens.
    pub root_cert_bundle: PathBuf,
}

impl Registry {
    pub fn start() -> Registry {
        Registry::start_with(None, None)
    }

    pub fn start_with(tls: Option<(PathBuf, PathBuf)>, token_auth: Option<TokenAuth>) -> Registry {
        Registry::launch(tls, token_auth, None, "")
    }

    fn launch(
        tls: Option<(PathBuf, PathBuf)>,
        token_auth: Option<TokenAuth>,
        client_ca: Option<PathBuf>,
        extra: &str,
    ) -> Registry {
        let mut registry = Registry {
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            tls,
            token_auth,
            client_ca,
            extra_config: extra.to_string(),
            child: None,
        };
        registry.restart();
        registry
    }

    /// Plain HTTP with `extra` added to the configuration (YAML).
    pub fn start_with_config(extra: &str) -> Registry {
        Registry::launch(None, None, None, extra)
    }

    /// HTTPS with `extra` added to the configuration (YAML), e.g. `auth: {htpasswd: …}`.
    pub fn start_with_tls_config(tls: (PathBuf, PathBuf), extra: &str) -> Registry {
        Registry::launch(Some(tls), None, None, extra)
    }

    /// Where distribution keeps the blob `digest` (`sha256:<hex>`) on disk.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join(format!("data/docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]))
    }

    /// The registry's log: its own lines and one access-log line per request
    /// (`"PUT /v2/... HTTP/1.1" 201 ...`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// HTTPS that requires a client certificate signed by `client_ca`.
    pub fn start_with_client_ca(tls: (PathBuf, PathBuf), client_ca: PathBuf) -> Registry {
        Registry::launch(Some(tls), None, Some(client_ca), "")
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Start it again (same storage, same port) after [`Registry::stop`], with the
    /// current `tls` and `token_auth`.
    pub fn restart(&mut self) {
        let config = self.dir.path().join("config.yml");
        let mut http = format!("addr: 127.0.0.1:{}", self.port);
        if let Some((cert, key)) = &self.tls {
            let client_cas = match &self.client_ca {
                Some(ca) => format!(", clientcas: [{}]", ca.display()),
                None => String::new(),
            };
            http.push_str(&format!(
                ", tls: {{certificate: {}, key: {}{client_cas}}}",
                cert.display(),
                key.display()
            ));
        }
        let auth = match &self.token_auth {
            Some(token) => format!(
                "auth: {{token: {{realm: \"{}\", service: {}, issuer: {}, rootcertbundle: {}}}}}\n",
                token.realm,
                token.service,
                token.issuer,
                token.root_cert_bundle.display()
            ),
            None => String::new(),
        };
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog: {{level: warn}}\nstorage: {{filesystem: {{rootdirectory: {}}}, delete: {{enabled: true}}}}\nhttp: {{{http}}}\n{auth}{}\n",
                self.dir.path().join("data").display(),
                self.extra_config,
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
        if self.tls.is_some() || self.token_auth.is_some() {
            // Listening is all a plain client can check here.
            let address = format!("127.0.0.1:{}", self.port);
            wait_until("the registry", || std::net::TcpStream::connect(&address).is_ok());
        } else {
            let url = format!("{}/v2/", self.url());
            wait_until("the registry", || ureq::get(&url).call().is_ok());
        }
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
    /// `http` or `https`.
    pub scheme: String,
    pub address: String,
    child: Child,
}

impl Gate {
    /// Start a gate whose configuration is `listen` + `upstream` + `rest` (YAML).
    pub fn start(upstream: &str, rest: &str) -> Gate {
        Gate::start_with_cache(
            upstream,
            rest,
            &crate::common::workspace().join("target/test-cache"),
        )
    }

    /// [`Gate::start`] with `cache` as its compile cache.
    pub fn start_with_cache(upstream: &str, rest: &str, cache: &Path) -> Gate {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("gate.yaml");
        std::fs::write(&config, Self::config_text(upstream, rest)).unwrap();
        let log = std::fs::File::create(dir.path().join("gate.log")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tagpolicy"))
            .args(["serve", "--config"])
            .arg(&config)
            .env("TAGPOLICY_CACHE_DIR", cache)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().strip_prefix("tagpolicy gate listening on ").unwrap_or_else(|| {
            let log = std::fs::read_to_string(dir.path().join("gate.log")).unwrap_or_default();
            panic!("unexpected first line from the gate: {line:?}\n{log}")
        });
        let (scheme, address) = url.split_once("://").unwrap();
        Gate { dir, scheme: scheme.to_string(), address: address.to_string(), child }
    }

    pub fn config_text(upstream: &str, rest: &str) -> String {
        format!("listen: 127.0.0.1:0\nupstream: {upstream}\ndecision_log: decisions.jsonl\n{rest}")
    }

    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.address)
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

    /// Wait at most `limit` for the gate to exit, and say how.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
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
    write_image_with(dir, seed, layer_size, arch, &ImageExtras::default())
}

/// What an image written by hand carries beyond its content.
#[derive(Default, Clone)]
pub struct ImageExtras {
    /// Manifest annotations.
    pub annotations: Vec<(&'static str, String)>,
    /// Config labels besides `seed`.
    pub labels: Vec<(&'static str, String)>,
    /// Bytes of padding in the config (an oversized config).
    pub config_padding: usize,
}

fn write_image_with(
    dir: &Path,
    seed: u64,
    layer_size: usize,
    arch: &str,
    extras: &ImageExtras,
) -> (String, usize) {
    let (layer, diff_id) = layer(seed, layer_size);
    let (layer_digest, layer_len) = write_blob(dir, &layer);
    let mut labels = serde_json::json!({"seed": seed.to_string()});
    for (key, value) in &extras.labels {
        labels[*key] = value.clone().into();
    }
    let mut config = serde_json::json!({
        "architecture": arch, "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "config": {"Labels": labels},
    });
    if extras.config_padding > 0 {
        config["comment"] = "x".repeat(extras.config_padding).into();
    }
    let (config_digest, config_len) = write_blob(dir, config.to_string().as_bytes());
    let annotations: serde_json::Map<String, serde_json::Value> =
        extras.annotations.iter().map(|(k, v)| (k.to_string(), v.clone().into())).collect();
    let mut manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_len},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer_len}],
    });
    if !annotations.is_empty() {
        manifest["annotations"] = annotations.into();
    }
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
        Layout::image_with(parent, seed, layer_size, &ImageExtras::default())
    }

    /// An image with annotations, more labels, or a padded config.
    pub fn image_with(parent: &Path, seed: u64, layer_size: usize, extras: &ImageExtras) -> Layout {
        let dir = parent.join(format!("image-{seed}"));
        let (digest, size) = write_image_with(&dir, seed, layer_size, "amd64", extras);
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
    let mut options = vec!["--dest-tls-verify=false"];
    if all {
        options.push("--all");
    }
    skopeo_copy_with(layout, address, reference, &options)
}

/// `skopeo copy OPTIONS oci:LAYOUT:v docker://ADDRESS/REFERENCE`.
pub fn skopeo_copy_with(
    layout: &Layout,
    address: &str,
    reference: &str,
    options: &[&str],
) -> Output {
    let mut command = Command::new("skopeo");
    command.args(["copy", "--retry-times", "0"]).args(options);
    command
        .arg(layout.oci_ref())
        .arg(format!("docker://{address}/{reference}"))
        .output()
        .expect("`skopeo` (Debian package skopeo) must be installed")
}

/// buildah with its own storage in a temporary folder (vfs, no daemon).
pub struct Buildah {
    storage: tempfile::TempDir,
}

impl Buildah {
    pub fn new() -> Buildah {
        Buildah { storage: tempfile::tempdir().unwrap() }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("buildah")
            .arg("--storage-driver=vfs")
            .arg("--root")
            .arg(self.storage.path().join("root"))
            .arg("--runroot")
            .arg(self.storage.path().join("run"))
            .args(args)
            .output()
            .expect("`buildah` (Debian package buildah) must be installed")
    }
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
    /// Sent with every request, e.g. `Bearer <token>`.
    authorization: Option<String>,
}

impl Client {
    pub fn new(base: &str) -> Client {
        Client::with(base, None, None)
    }

    /// A client that trusts `ca_pem` (PEM) for HTTPS and sends `authorization`.
    pub fn with(base: &str, ca_pem: Option<&str>, authorization: Option<String>) -> Client {
        // A bounded wait: a gate that never answers fails the test instead of hanging it.
        let mut agent = ureq::AgentBuilder::new().redirects(0).timeout(Duration::from_secs(60));
        if let Some(ca_pem) = ca_pem {
            agent = agent.tls_config(Arc::new(tls_client(ca_pem)));
        }
        Client { base: base.to_string(), agent: agent.build(), authorization }
    }

    fn request(&self, method: &str, path: &str) -> ureq::Request {
        let request = self.agent.request(method, &format!("{}{path}", self.base));
        match &self.authorization {
            Some(authorization) => request.set("Authorization", authorization),
            None => request,
        }
    }

    /// `GET PATH` (e.g. `/metrics`), read whole.
    pub fn get(&self, path: &str) -> Reply {
        reply(self.request("GET", path).call())
    }

    /// `POST PATH` without a body, read whole.
    pub fn post(&self, path: &str) -> Reply {
        reply(self.request("POST", path).call())
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
            .request("PUT", &format!("/v2/{repository}/manifests/{reference}"))
            .set("Content-Type", MANIFEST);
        if let Some(authorization) = authorization {
            request = request.set("Authorization", authorization);
        }
        reply(request.send_bytes(manifest))
    }

    /// A manifest PUT with more `headers` (e.g. the actor a trusted front proxy names).
    pub fn put_manifest_headers(
        &self,
        repository: &str,
        reference: &str,
        manifest: &[u8],
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self
            .request("PUT", &format!("/v2/{repository}/manifests/{reference}"))
            .set("Content-Type", MANIFEST);
        for (name, value) in headers {
            request = request.set(name, value);
        }
        reply(request.send_bytes(manifest))
    }

    /// A manifest PUT with `content_type` (an index, an artifact).
    pub fn put_manifest_as(
        &self,
        repository: &str,
        reference: &str,
        manifest: &[u8],
        content_type: &str,
    ) -> Reply {
        let request = self
            .request("PUT", &format!("/v2/{repository}/manifests/{reference}"))
            .set("Content-Type", content_type);
        reply(request.send_bytes(manifest))
    }

    pub fn delete_manifest(&self, repository: &str, reference: &str) -> Reply {
        reply(self.request("DELETE", &format!("/v2/{repository}/manifests/{reference}")).call())
    }

    /// `GET` a manifest, accepting OCI manifests and indexes.
    pub fn get_manifest(&self, repository: &str, reference: &str) -> Reply {
        reply(
            self.request("GET", &format!("/v2/{repository}/manifests/{reference}"))
                .set("Accept", &format!("{MANIFEST}, {INDEX}"))
                .call(),
        )
    }

    pub fn digest_of(&self, repository: &str, reference: &str) -> Option<String> {
        let reply = reply(
            self.request("HEAD", &format!("/v2/{repository}/manifests/{reference}"))
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
        let reply = self.get(&format!("/v2/{repository}/tags/list"));
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
        let start = reply(self.request("POST", &format!("/v2/{repository}/blobs/uploads/")).call());
        assert_eq!(start.status, 202, "{}", start.body);
        let location = start.header_all("location")[0].to_string();
        let location = if location.starts_with("http") {
            location
        } else {
            format!("{}{location}", self.base)
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let mut put = self.agent.put(&format!("{location}{separator}digest={digest}"));
        if let Some(authorization) = &self.authorization {
            put = put.set("Authorization", authorization);
        }
        let done = reply(put.set("Content-Type", "application/octet-stream").send_bytes(bytes));
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

/// A rustls client configuration that trusts only `ca_pem`.
pub fn tls_client(ca_pem: &str) -> rustls::ClientConfig {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(certificate.unwrap()).unwrap();
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
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
    /// A manifest PUT whose transport errors (a failed TLS handshake, a reset connection) are
    /// returned, for a loop that collects failures instead of stopping at the first.
    pub fn try_put_manifest(
        &self,
        repository: &str,
        reference: &str,
        manifest: &[u8],
    ) -> Result<Reply, String> {
        let request = self
            .request("PUT", &format!("/v2/{repository}/manifests/{reference}"))
            .set("Content-Type", MANIFEST);
        match request.send_bytes(manifest) {
            Err(ureq::Error::Transport(error)) => Err(error.to_string()),
            result => Ok(reply(result)),
        }
    }
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

static NEXT_DIR: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A temporary folder with a lowercase path: buildah names a pulled image after its path,
/// which must be lowercase (tempfile's random names are not).
pub struct LowercaseDir(std::path::PathBuf);

impl LowercaseDir {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "tagpolicy-buildah-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        LowercaseDir(dir)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for LowercaseDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Wait (up to 20 s) until `done` holds.
pub fn eventually(what: &str, done: impl FnMut() -> bool) {
    eventually_within(std::time::Duration::from_secs(20), what, done);
}

/// Wait (up to `limit`) until `done` holds.
pub fn eventually_within(limit: std::time::Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

impl Registry {
    /// The requests the registry has answered, from its access log, as `METHOD TARGET`
    /// (e.g. `GET /v2/team/app/manifests/latest`), oldest first.
    pub fn requests(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap();
        log.lines()
            .filter_map(|line| {
                // `127.0.0.1 - - [date] "GET /v2/... HTTP/1.1" 200 ...`
                let request = line.split('"').nth(1)?;
                let (method, rest) = request.split_once(' ')?;
                let (target, _) = rest.rsplit_once(' ')?;
                // Other lines (warnings) quote messages, not requests.
                target.starts_with('/').then(|| format!("{method} {target}"))
            })
            .collect()
    }
}

/// A bearer token for registry notifications, written to `notify.token` in `dir`: the token
/// and the gate configuration's `notifications` line.
pub fn notifications_token(dir: &Path) -> (String, String) {
    let token = "notifications-token-0123456789".to_string();
    let file = dir.join("notify.token");
    std::fs::write(&file, &token).unwrap();
    (token, format!("notifications: {{token_file: {}}}\n", file.display()))
}

/// The registry configuration that reports every write to the gate at `gate_url` with `token`.
pub fn notifications_to(gate_url: &str, token: &str) -> String {
    format!(
        "notifications:\n  endpoints:\n    - name: gates\n      url: {gate_url}/tagpolicy/notifications\n      \
         headers: {{Authorization: [\"Bearer {token}\"]}}\n      timeout: 2s\n      threshold: 3\n      backoff: 200ms\n"
    )
}
