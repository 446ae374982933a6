"""Render deploy/kubernetes offline and validate every object against the Kubernetes schemas.

    manifests.py DIR --kubernetes 1.31 [--also FILE]... [--kubectl]

Renders the kustomization in DIR with the subset of kustomize it uses (resources that are
files, namespace, labels without selectors or templates, images by name), refusing anything
else, so that an edit using more of kustomize fails here instead of being rendered wrong.
Every rendered object, and every object in each --also file, is validated strictly (unknown
fields are errors; an unknown kind or apiVersion too) by kubernetes-validate's bundled schemas
for that Kubernetes version. With --kubectl, a `kubectl` on PATH renders the same
kustomization and the two renderings must be equal (skipped, and said, when there is none).
Prints {"objects": [{"source": FILE, "object": {...}}...], "kubectl": "compared"|"absent"}
as JSON on success; on failure, one line per problem naming the file, the object and the field,
and exit status 1.
"""

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys

import kubernetes_validate
import yaml

SUPPORTED_KEYS = {"apiVersion", "kind", "namespace", "labels", "resources", "images"}
# Kinds without a namespace, among those a deployment like this one could use.
CLUSTER_SCOPED = {
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
    "PersistentVolume", "PriorityClass", "StorageClass", "IngressClass",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
}


class Refused(Exception):
    pass


def load_documents(path):
    with open(path) as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def name_of(obj):
    return "%s/%s" % (obj.get("kind", "?"), obj.get("metadata", {}).get("name", "?"))


def pod_specs(obj):
    """The pod specs in an object: a Pod's, a workload's template, a CronJob's job template."""
    spec = obj.get("spec", {})
    if obj.get("kind") == "Pod":
        yield spec
    template = spec.get("template", {}).get("spec")
    if template is not None:
        yield template
    job = spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec")
    if job is not None:
        yield job


def image_name(image):
    """`name` of `name:tag`, `name@digest` or `host:port/name:tag`."""
    image = image.split("@", 1)[0]
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        image = image[: len(image) - len(last)] + last.split(":", 1)[0]
    return image


def set_image(image, rule):
    name = rule.get("newName", image_name(image))
    if "newTag" in rule:
        return "%s:%s" % (name, rule["newTag"])
    rest = image[len(image_name(image)):]
    return name + rest


def render(directory):
    path = os.path.join(directory, "kustomization.yaml")
    (kustomization,) = load_documents(path)
    unknown = set(kustomization) - SUPPORTED_KEYS
    if unknown:
        raise Refused("%s: %s: not supported by this renderer (it knows %s); extend "
                      "tests/deploy/manifests.py, and check it against `kubectl kustomize`"
                      % (path, ", ".join(sorted(unknown)), ", ".join(sorted(SUPPORTED_KEYS))))
    if (kustomization.get("apiVersion"), kustomization.get("kind")) != (
            "kustomize.config.k8s.io/v1beta1", "Kustomization"):
        raise Refused("%s: not a kustomize.config.k8s.io/v1beta1 Kustomization" % path)
    for labels in kustomization.get("labels", []):
        extra = set(labels) - {"pairs", "includeSelectors", "includeTemplates"}
        if extra or labels.get("includeSelectors") or labels.get("includeTemplates"):
            raise Refused("%s: labels: only `pairs` (no selectors, no templates) is "
                          "supported" % path)
    for rule in kustomization.get("images", []):
        if set(rule) - {"name", "newName", "newTag"}:
            raise Refused("%s: images: only name, newName and newTag are supported" % path)
    objects = []
    for resource in kustomization.get("resources", []):
        file = os.path.join(directory, resource)
        if not os.path.isfile(file):
            raise Refused("%s: resource %s: only files are supported" % (path, resource))
        for obj in load_documents(file):
            objects.append({"source": os.path.normpath(file), "object": obj})
    for entry in objects:
        obj = entry["object"]
        metadata = obj.setdefault("metadata", {})
        if "namespace" in kustomization and obj.get("kind") not in CLUSTER_SCOPED:
            metadata["namespace"] = kustomization["namespace"]
        for labels in kustomization.get("labels", []):
            metadata.setdefault("labels", {}).update(labels["pairs"])
        for spec in pod_specs(obj):
            for container in spec.get("initContainers", []) + spec.get("containers", []):
                for rule in kustomization.get("images", []):
                    if image_name(container["image"]) == rule["name"]:
                        container["image"] = set_image(container["image"], rule)
    return objects


def kubectl_rendering(directory):
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    out = subprocess.run([kubectl, "kustomize", directory], check=True,
                         capture_output=True, text=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc is not None]


def key(obj):
    m = obj.get("metadata", {})
    return (obj.get("apiVersion"), obj.get("kind"), m.get("namespace"), m.get("name"))


def validate(entry, version):
    """Problems with one object: '' when it is valid."""
    obj = entry["object"]
    where = "%s: %s" % (entry["source"], name_of(obj))
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as e:
        field = ".".join(str(p) for p in e.absolute_path) or "(the object)"
        return "%s: %s: %s" % (where, field, e.message)
    except kubernetes_validate.SchemaNotFoundError:
        return "%s: no schema for kind %s in apiVersion %s (Kubernetes %s)" % (
            where, obj.get("kind"), obj.get("apiVersion"), version)
    return ""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("--kubernetes", required=True)
    parser.add_argument("--also", action="append", default=[])
    parser.add_argument("--kubectl", action="store_true")
    args = parser.parse_args()
    try:
        objects = render(args.directory)
    except Refused as e:
        print(e, file=sys.stderr)
        return 1
    rendered = copy.deepcopy(objects)
    for file in args.also:
        objects += [{"source": os.path.normpath(file), "object": obj}
                    for obj in load_documents(file)]
    problems = [p for p in (validate(entry, args.kubernetes) for entry in objects) if p]
    kubectl = "absent"
    if args.kubectl:
        theirs = kubectl_rendering(args.directory)
        if theirs is not None:
            kubectl = "compared"
            ours = {key(e["object"]): e["object"] for e in rendered}
            theirs = {key(o): o for o in theirs}
            for k in sorted(set(ours) | set(theirs), key=str):
                if ours.get(k) != theirs.get(k):
                    problems.append("%s: rendered differently by this renderer and by "
                                    "`kubectl kustomize`:\n  ours:    %s\n  kubectl: %s"
                                    % ("/".join(str(p) for p in k), json.dumps(ours.get(k)),
                                       json.dumps(theirs.get(k))))
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    json.dump({"objects": objects, "kubectl": kubectl}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
