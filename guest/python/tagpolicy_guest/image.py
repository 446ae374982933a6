"""The facts of the repository's images: manifests, config labels, referrers. Each call can
cost the host a registry request; call only what the rule needs. Only valid during
``evaluate``.

Example::

    >>> from tagpolicy_guest import image
    >>> pushed = request.push().digest
    >>> image.label(pushed, "maintainer")
    'team@example.com'
    >>> image.has_referrer(pushed, "application/vnd.dev.cosign.artifact.sig.v1+json")
    True
"""

from __future__ import annotations

from typing import Any

from . import _host

__all__ = ["annotation", "has_referrer", "label", "labels_of", "manifest_of", "referrers_of"]


def manifest_of(digest: str) -> Any | None:
    """The manifest ``digest`` (``.media_type``, ``.artifact_type``, ``.config``,
    ``.layers``, ``.manifests``, ``.subject``, ``.annotations``), or None if the host does
    not know it.

    Example::

        >>> from tagpolicy_guest import image
        >>> manifest = image.manifest_of(request.push().digest)
        >>> manifest.media_type
        'application/vnd.oci.image.manifest.v1+json'
        >>> image.annotation(manifest, "org.opencontainers.image.revision")
        '4f2a9c1'
    """
    return _host.image.manifest_of(digest)


def labels_of(digest: str) -> list[Any]:
    """The labels (``.key``, ``.value``) of the image ``digest``'s config, ordered by key.

    Example::

        >>> from tagpolicy_guest import image
        >>> [(kv.key, kv.value) for kv in image.labels_of(request.push().digest)]
        [('maintainer', 'team@example.com'), ('org.opencontainers.image.source', 'https://git.example.com/team/app')]
    """
    return _host.image.labels_of(digest)


def referrers_of(digest: str, artifact_type: str | None = None) -> list[Any]:
    """The artifacts whose subject is ``digest`` (``.digest``, ``.media_type``,
    ``.artifact_type``, ``.annotations``), ordered by digest; only those of
    ``artifact_type`` if given.

    Example::

        >>> from tagpolicy_guest import image
        >>> [r.artifact_type for r in image.referrers_of(request.push().digest)]
        ['application/vnd.dev.cosign.artifact.sig.v1+json']
        >>> image.referrers_of(request.push().digest, "application/spdx+json")
        []
    """
    return _host.image.referrers_of(digest, artifact_type)


def label(digest: str, key: str) -> str | None:
    """The value of label ``key`` of the image ``digest``'s config, or None.

    Example::

        >>> from tagpolicy_guest import image
        >>> image.label(request.push().digest, "org.opencontainers.image.source")
        'https://git.example.com/team/app'
        >>> image.label(request.push().digest, "org.opencontainers.image.licenses") is None
        True
    """
    return next((kv.value for kv in labels_of(digest) if kv.key == key), None)


def has_referrer(digest: str, artifact_type: str) -> bool:
    """Whether at least one artifact of ``artifact_type`` refers to ``digest``.

    Example::

        >>> from tagpolicy_guest import image
        >>> image.has_referrer(request.push().digest, "application/vnd.dev.cosign.artifact.sig.v1+json")
        True
    """
    return bool(referrers_of(digest, artifact_type))


def annotation(manifest: Any, key: str) -> str | None:
    """The value of annotation ``key`` of a manifest (or descriptor, or referrer), or None.

    Example::

        >>> from tagpolicy_guest import image
        >>> manifest = image.manifest_of(request.push().digest)
        >>> image.annotation(manifest, "org.opencontainers.image.revision")
        '4f2a9c1'
    """
    return next((kv.value for kv in manifest.annotations if kv.key == key), None)
