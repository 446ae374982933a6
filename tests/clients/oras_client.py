"""oras-py driven from tests/clients.rs: push, attach a referrer, tag, list tags.

oras-py 0.2.43 pushes an artifact with a `subject` but has no referrers logic of its own (it
neither reads `OCI-Subject` nor keeps the referrers tag schema), so `attach` adds what an
OCI 1.1 client (oras, notation) does on top of oras-py's requests: the artifact manifest is
PUT by digest; if the registry's answer names the subject in `OCI-Subject`, the registry has
the referrers API and nothing else is written; otherwise the index tagged `sha256-<hex>` is
read, the new descriptor appended and the index PUT back under that tag. Every request goes
through oras-py's `do_request` (its authentication and retry decorator included), and
failures go through oras-py's own checks, so what is printed on a denial is oras-py's.

Usage (REGISTRY is host:port, plain HTTP):
  oras_client.py push REGISTRY REPO:TAG FILE
  oras_client.py attach REGISTRY REPO SUBJECT_TAG ARTIFACT_TYPE FILE
  oras_client.py tag REGISTRY REPO FROM_TAG TO_TAG
  oras_client.py tags REGISTRY REPO
"""
import hashlib
import json
import os
import sys

import oras.defaults
import oras.oci
import oras.provider

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def registry():
    return oras.provider.Registry(insecure=True)


def url(client, host, repository, reference):
    return f"{client.prefix}://{host}/v2/{repository}/manifests/{reference}"


def get_raw(client, host, repository, reference):
    """The manifest's bytes and media type as the registry stores them, or None on 404."""
    response = client.do_request(
        url(client, host, repository, reference),
        "GET",
        headers={"Accept": f"{MANIFEST}, {INDEX}"},
    )
    if response.status_code == 404:
        return None
    client._check_200_response(response)
    media_type = response.headers.get("Content-Type", MANIFEST).split(";")[0]
    return response.content, media_type


def put_raw(client, host, repository, reference, body, media_type):
    response = client.do_request(
        url(client, host, repository, reference),
        "PUT",
        data=body,
        headers={"Content-Type": media_type},
    )
    client._check_200_response(response)
    return response


def digest_of(body):
    return "sha256:" + hashlib.sha256(body).hexdigest()


def push(host, reference, path):
    client = registry()
    # oras-py wants files relative to the working directory.
    os.chdir(os.path.dirname(os.path.abspath(path)))
    response = client.push(
        target=f"{host}/{reference}", files=[os.path.basename(path)], quiet=True
    )
    print(f"pushed {reference} {response.headers.get('Docker-Content-Digest')}")


def attach(host, repository, subject_tag, artifact_type, path):
    client = registry()
    container = client.get_container(f"{host}/{repository}")
    subject_body, subject_type = get_raw(client, host, repository, subject_tag)
    subject = oras.oci.Subject(
        mediaType=subject_type, digest=digest_of(subject_body), size=len(subject_body)
    )

    layer = oras.oci.NewLayer(path, media_type="application/octet-stream")
    layer["annotations"] = {oras.defaults.annotation_title: os.path.basename(path)}
    client._check_200_response(client.upload_blob(path, container, layer))
    config, _ = oras.oci.ManifestConfig(media_type="application/vnd.oci.empty.v1+json")
    empty = os.path.join(os.path.dirname(os.path.abspath(path)), "empty-config.json")
    with open(empty, "w") as out:
        out.write("{}")
    client._check_200_response(client.upload_blob(empty, container, config))

    manifest = oras.oci.NewManifest()
    manifest["artifactType"] = artifact_type
    manifest["config"] = config
    manifest["layers"] = [layer]
    manifest["subject"] = {
        "mediaType": subject.mediaType,
        "digest": subject.digest,
        "size": subject.size,
    }
    body = json.dumps(manifest).encode()
    digest = digest_of(body)
    response = put_raw(client, host, repository, digest, body, MANIFEST)
    if response.headers.get("OCI-Subject") == subject.digest:
        print(f"attached {digest} to {subject.digest}: OCI-Subject, no fallback tag")
        return

    # No referrers API: the referrers tag schema, read-modify-write.
    tag = subject.digest.replace(":", "-")
    found = get_raw(client, host, repository, tag)
    index = json.loads(found[0]) if found else {
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [],
    }
    index["manifests"].append(
        {
            "mediaType": MANIFEST,
            "digest": digest,
            "size": len(body),
            "artifactType": artifact_type,
        }
    )
    put_raw(client, host, repository, tag, json.dumps(index).encode(), INDEX)
    count = len(index["manifests"])
    print(f"attached {digest} to {subject.digest}: fallback tag {tag} ({count} referrers)")


def tag(host, repository, source, target):
    client = registry()
    body, media_type = get_raw(client, host, repository, source)
    put_raw(client, host, repository, target, body, media_type)
    print(f"tagged {repository}:{target} {digest_of(body)}")


def tags(host, repository):
    client = registry()
    for name in client.get_tags(f"{host}/{repository}"):
        print(name)


COMMANDS = {"push": push, "attach": attach, "tag": tag, "tags": tags}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[sys.argv[1]](*sys.argv[2:])
