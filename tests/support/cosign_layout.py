#!/usr/bin/env python3
"""A stand-in for the few `cosign` commands docs/signatures.md shows, for the docs test.

cosign is not packaged for Debian and cannot be installed on the test machines, so this
script writes what cosign writes with a key pair on a registry without the referrers API,
with the same commands and flags:

- `generate-key-pair [--output-key-prefix P]`: an ECDSA P-256 key pair, `P.key` and `P.pub`
  (openssl; unencrypted, where cosign encrypts the key with COSIGN_PASSWORD);
- `sign --key K [--yes] [--allow-insecure-registry] REF`: a simple-signing payload signed
  with K, appended as a layer (its signature in the `dev.cosignproject.cosign/signature`
  annotation) to the manifest under `sha256-<hex>.sig`, which is pushed again;
- `attest --key K --type T --predicate FILE REF`: an in-toto statement in a DSSE envelope,
  appended the same way under `sha256-<hex>.att`;
- `clean --type signature|attestation|all --force REF`: deletes those tags.

It speaks plain HTTP to 127.0.0.1 only (the docs test's gate), reads at most 4 MiB per
answer, and exits 1 with the registry's error message on a refusal, as cosign does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import urllib.error
import urllib.request

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MAX_ANSWER = 4 << 20
PREDICATE_TYPES = {
    "slsaprovenance": "https://slsa.dev/provenance/v0.2",
    "spdxjson": "https://spdx.dev/Document",
    "cyclonedx": "https://cyclonedx.org/bom",
    "custom": "https://cosign.sigstore.dev/attestation/v1",
}


class Refused(Exception):
    """The registry said no; the message is what a person reads."""


def request(method: str, url: str, body: bytes | None = None, headers: dict | None = None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as answer:
            return answer.status, answer.headers, answer.read(MAX_ANSWER)
    except urllib.error.HTTPError as error:
        text = error.read(MAX_ANSWER).decode("utf-8", "replace")
        try:
            messages = [e.get("message", "") for e in json.loads(text).get("errors", [])]
            text = "; ".join(m for m in messages if m) or text
        except ValueError:
            pass
        if error.code == 404 and method in ("GET", "HEAD"):
            return 404, error.headers, b""
        raise Refused(f"{method} {url}: {error.code} {error.reason}: {text}") from None


class Reference:
    def __init__(self, text: str):
        host, _, rest = text.partition("/")
        if not host.startswith("127.0.0.1:"):
            sys.exit(f"cosign stand-in: only 127.0.0.1 registries, not `{host}`")
        self.host = host
        if "@" in rest:
            self.repository, _, self.reference = rest.partition("@")
        else:
            self.repository, _, self.reference = rest.rpartition(":")
        self.base = f"http://{host}/v2/{self.repository}"

    def digest(self) -> str:
        if self.reference.startswith("sha256:"):
            return self.reference
        _, headers, _ = request("HEAD", f"{self.base}/manifests/{self.reference}", headers={"Accept": MANIFEST})
        return headers["Docker-Content-Digest"]

    def upload(self, blob: bytes) -> dict:
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        _, headers, _ = request("POST", f"{self.base}/blobs/uploads/")
        location = headers["Location"]
        if location.startswith("/"):
            location = f"http://{self.host}{location}"
        separator = "&" if "?" in location else "?"
        request("PUT", f"{location}{separator}digest={digest}", blob, {"Content-Type": "application/octet-stream"})
        return {"digest": digest, "size": len(blob)}

    def append(self, tag: str, media_type: str, blob: bytes, annotations: dict) -> None:
        """Append one layer to the manifest under `tag`, keeping the layers already there."""
        status, _, body = request("GET", f"{self.base}/manifests/{tag}", headers={"Accept": MANIFEST})
        layers = json.loads(body)["layers"] if status == 200 else []
        layers.append({"mediaType": media_type, **self.upload(blob), "annotations": annotations})
        config = json.dumps(
            {
                "architecture": "",
                "os": "",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
            },
            separators=(",", ":"),
        ).encode()
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **self.upload(config)},
            "layers": layers,
        }
        body = json.dumps(manifest, separators=(",", ":")).encode()
        request("PUT", f"{self.base}/manifests/{tag}", body, {"Content-Type": MANIFEST})


def sign_bytes(key: str, data: bytes) -> str:
    """The base64 DER ECDSA signature of sha256(data), as cosign writes it."""
    der = subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", key], input=data, capture_output=True, check=True
    ).stdout
    return base64.b64encode(der).decode()


def options(args: list[str]) -> tuple[dict, list[str]]:
    flags, positional = {}, []
    it = iter(args)
    for arg in it:
        if arg in ("--yes", "-y", "--allow-insecure-registry", "--force", "-f"):
            continue
        if arg.startswith("--"):
            name, _, value = arg[2:].partition("=")
            flags[name] = value or next(it)
        else:
            positional.append(arg)
    return flags, positional


def generate_key_pair(flags: dict) -> None:
    prefix = flags.get("output-key-prefix", "cosign")
    subprocess.run(
        f"openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out {prefix}.key"
        f" && openssl ec -in {prefix}.key -pubout -out {prefix}.pub 2>/dev/null",
        shell=True,
        check=True,
    )
    print(f"Private key written to {prefix}.key\nPublic key written to {prefix}.pub")


def sign(flags: dict, ref: Reference) -> None:
    digest = ref.digest()
    payload = json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": f"{ref.host}/{ref.repository}"},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        },
        separators=(",", ":"),
    ).encode()
    annotations = {"dev.cosignproject.cosign/signature": sign_bytes(flags["key"], payload)}
    tag = digest.replace(":", "-") + ".sig"
    ref.append(tag, "application/vnd.dev.cosign.simplesigning.v1+json", payload, annotations)
    print(f"Pushing signature to: {ref.host}/{ref.repository}:{tag}")


def attest(flags: dict, ref: Reference) -> None:
    digest = ref.digest()
    predicate_type = PREDICATE_TYPES.get(flags.get("type", "custom"), flags.get("type"))
    with open(flags["predicate"], "rb") as file:
        predicate = json.loads(file.read(MAX_ANSWER))
    statement = json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": predicate_type,
            "subject": [{"name": f"{ref.host}/{ref.repository}", "digest": {"sha256": digest[7:]}}],
            "predicate": predicate,
        },
        separators=(",", ":"),
    ).encode()
    payload_type = "application/vnd.in-toto+json"
    # DSSE's pre-authentication encoding is what is signed.
    pae = b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type.encode(), len(statement), statement)
    envelope = json.dumps(
        {
            "payloadType": payload_type,
            "payload": base64.b64encode(statement).decode(),
            "signatures": [{"keyid": "", "sig": sign_bytes(flags["key"], pae)}],
        },
        separators=(",", ":"),
    ).encode()
    annotations = {"dev.cosignproject.cosign/signature": "", "predicateType": predicate_type}
    tag = digest.replace(":", "-") + ".att"
    ref.append(tag, "application/vnd.dsse.envelope.v1+json", envelope, annotations)
    print(f"Pushing attestation to: {ref.host}/{ref.repository}:{tag}")


def clean(flags: dict, ref: Reference) -> None:
    suffixes = {"signature": [".sig"], "attestation": [".att"], "all": [".sig", ".att", ".sbom"]}
    digest = ref.digest()
    for suffix in suffixes[flags.get("type", "all")]:
        tag = digest.replace(":", "-") + suffix
        status, _, _ = request("HEAD", f"{ref.base}/manifests/{tag}", headers={"Accept": MANIFEST})
        if status == 200:
            request("DELETE", f"{ref.base}/manifests/{tag}")
            print(f"Removed {ref.host}/{ref.repository}:{tag}")


def main(argv: list[str]) -> int:
    if not argv:
        sys.exit("usage: cosign generate-key-pair|sign|attest|clean ...")
    command, (flags, positional) = argv[0], options(argv[1:])
    try:
        if command == "generate-key-pair":
            generate_key_pair(flags)
        elif command in ("sign", "attest", "clean"):
            {"sign": sign, "attest": attest, "clean": clean}[command](flags, Reference(positional[0]))
        else:
            sys.exit(f"cosign stand-in: `{command}` is not one of the commands docs/signatures.md shows")
    except Refused as refused:
        print(f"Error: {refused}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
