"""The :class:`Policy` base class and :func:`export`, which turns a subclass into the
component's ``policy`` export.

Example::

    import tagpolicy_guest
    from tagpolicy_guest import Findings, Request

    class NoLatest(tagpolicy_guest.Policy):
        NAME = "no-latest"
        VERSION = "0.1.0"
        DESCRIPTION = "Nobody pushes `latest`"

        def evaluate(self, request: Request, findings: Findings) -> None:
            for change in request.changes():
                if change.tag == "latest":
                    findings.deny(change.tag, "`latest` is not pushed here; push a release tag")

    Policy = tagpolicy_guest.export(NoLatest)
"""

from __future__ import annotations

import sys
import traceback
from typing import Any, ClassVar, TypeVar

from . import _host
from .findings import Findings
from .request import Request
from .settings import NoSettings, SettingsError, parse

__all__ = ["Policy", "export"]

P = TypeVar("P", bound="Policy")


class Policy:
    """A tag rule. Subclass it, describe it with the class attributes, declare its
    settings, decide in :meth:`evaluate`, then export it from the app module (``policy.py``)::

        Policy = tagpolicy_guest.export(MyRule)

    A rule can be tried out of a component as the SDK's tests do: configure it, then give
    :meth:`evaluate` a request and findings.

    Example::

        >>> from tagpolicy_guest import Findings, NoSettings, Policy
        >>> class NoLatest(Policy):
        ...     NAME = "no-latest"
        ...     VERSION = "0.1.0"
        ...     DESCRIPTION = "Nobody pushes `latest`"
        ...
        ...     def evaluate(self, request, findings):
        ...         for change in request.changes():
        ...             if change.tag == "latest":
        ...                 findings.deny(change.tag, "`latest` is not pushed here; push a release tag")
        >>> rule = NoLatest.configure(NoSettings())
        >>> findings = Findings()
        >>> rule.evaluate(request, findings)
        >>> findings.decision().outcome
        'deny'
    """

    #: Short, stable name (``lowercase-with-dashes``).
    NAME: ClassVar[str]
    #: The policy's own version, e.g. ``0.1.0`` (keep it equal to ``pyproject.toml``'s).
    VERSION: ClassVar[str]
    #: One line saying what the policy enforces.
    DESCRIPTION: ClassVar[str]
    #: Example settings as JSON text, shown by ``tagpolicy inspect``.
    SETTINGS_EXAMPLE: ClassVar[str] = "{}"
    #: The settings: a dataclass read from the operator's JSON (see
    #: :mod:`tagpolicy_guest.settings`); unknown fields are errors.
    SETTINGS: ClassVar[type] = NoSettings

    def __init__(self, settings: Any) -> None:
        #: The settings, as read into :attr:`SETTINGS`.
        self.settings = settings

    @classmethod
    def configure(cls: type[P], settings: Any) -> P:
        """Check the settings and build the configured rule. Runs once per loaded policy.
        Raise :class:`SettingsError` (shown to the operator as is) for what the types alone
        cannot check: say which field and value are wrong.

        Example::

            from dataclasses import dataclass
            from tagpolicy_guest import U32, Findings, Policy, Request, SettingsError

            @dataclass
            class Settings:
                min_tags: U32

            class MinTags(Policy):
                NAME = "min-tags"
                VERSION = "0.1.0"
                DESCRIPTION = "Keep at least `min_tags` tags"
                SETTINGS_EXAMPLE = '{"min_tags": 3}'
                SETTINGS = Settings

                @classmethod
                def configure(cls, settings: Settings) -> "MinTags":
                    if settings.min_tags == 0:
                        raise SettingsError.at("min_tags", "0 keeps no tag; give at least 1")
                    return cls(settings)

                def evaluate(self, request: Request, findings: Findings) -> None:
                    pass
        """
        return cls(settings)

    def evaluate(self, request: Request, findings: Findings) -> None:
        """Decide one request: report each reason to refuse or warn in ``findings``;
        reporting nothing allows. Must be deterministic.

        Example::

            from tagpolicy_guest import Findings, Policy, Request

            class ReleaseBotReleases(Policy):
                NAME = "release-bot-releases"
                VERSION = "0.1.0"
                DESCRIPTION = "Only release-bot pushes release tags"

                def evaluate(self, request: Request, findings: Findings) -> None:
                    releases = [c for c in request.changes() if c.tag[:1].isdigit()]
                    if releases and request.actor().id != "release-bot":
                        for change in releases:
                            findings.deny(change.tag, f"only release-bot may {change.verb} `{change.tag}`")
        """
        raise NotImplementedError


# A component instance is single-threaded; the configured policy lives here between
# `configure` and the `evaluate` calls.
_configured: Policy | None = None


def export(policy: type[Policy]) -> type:
    """The class componentize-py exports for the ``policy`` interface, running ``policy``.
    Bind it to the name ``Policy`` in the app module.

    Example::

        import tagpolicy_guest

        class AnythingGoes(tagpolicy_guest.Policy):
            NAME = "anything-goes"
            VERSION = "0.1.0"
            DESCRIPTION = "Allows every request"

            def evaluate(self, request, findings):
                pass

        Policy = tagpolicy_guest.export(AnythingGoes)
    """
    for attribute in ("NAME", "VERSION", "DESCRIPTION", "SETTINGS_EXAMPLE"):
        if not isinstance(getattr(policy, attribute, None), str):
            raise TypeError(f"{policy.__name__}.{attribute} must be a string")
    if sys.platform == "wasi":  # in a component, not in the SDK's tests
        sys.stdout = sys.stderr = _Output()

    def metadata(self: Any) -> Any:
        return _host.types.PolicyMetadata(
            name=policy.NAME,
            version=policy.VERSION,
            description=policy.DESCRIPTION,
            settings_example=policy.SETTINGS_EXAMPLE,
        )

    def configure(self: Any, settings: str) -> None:
        global _configured
        try:
            _configured = policy.configure(parse(settings, policy.SETTINGS))
        except SettingsError as err:
            raise _host.Err(str(err)) from None
        except Exception as err:  # a bug: say where, instead of a bare trap
            raise _host.Err(f"policy `{policy.NAME}` failed to read its settings: {_describe(err)}") from None

    def evaluate(self: Any, request: Any) -> None:
        try:
            decision = decide(policy, request)
        except Exception as err:
            # Not a decision: the host reports the failure as the policy's error (and refuses
            # the request, as for a trap), with the Python error and where it happened.
            _host.verdict.fail(_describe(err))
            return
        decision.report()

    return type("Policy", (_host.Export,), {"metadata": metadata, "configure": configure, "evaluate": evaluate})


def decide(policy: type[Policy], raw_request: Any) -> Any:
    """The configured ``policy``'s decision on a request of the contract (what ``evaluate``
    reports to the host)."""
    findings = Findings()
    if isinstance(_configured, policy):
        _configured.evaluate(Request(raw_request), findings)
    else:
        findings.deny_request("the policy was evaluated before it was configured")
    return findings.decision()


class _Output:
    """``sys.stdout`` and ``sys.stderr`` in a component: what the policy prints goes to the
    host (the contract's ``output``), which shows it with the decision and caps it. Its WASI
    is stubbed (the host grants no filesystem, which componentize-py's own stdio needs)."""

    def write(self, text: str) -> int:
        _host.output.write(text)
        return len(text)

    def flush(self) -> None:
        pass


def _describe(err: Exception) -> str:
    """``ZeroDivisionError: division by zero (policy.py, line 12)``: the error and the
    innermost line of the policy's own code that raised it (not the SDK's)."""
    # Not `extract_tb`: it reads the source lines, and a component has no files (a stubbed
    # WASI call traps).
    frames = list(traceback.walk_tb(err.__traceback__))
    own = [f for f in frames if f"{__package__}/" not in f[0].f_code.co_filename.replace("\\", "/")]
    where = ""
    if own or frames:
        frame, line = (own or frames)[-1]
        where = f" ({frame.f_code.co_filename.rsplit('/', 1)[-1]}, line {line})"
    return f"{type(err).__name__}: {err}{where}"
