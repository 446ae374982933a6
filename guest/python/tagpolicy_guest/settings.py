"""Settings: JSON text read into dataclasses, with errors that name the field path.

A policy declares its settings as a dataclass whose fields carry type hints; the reader
checks the JSON against them like the Rust SDK's serde does, and words its errors the same
way: ``settings.owners[0].actors: invalid type: string "bot", expected a sequence``,
``settings.mutabel: unknown field `mutabel`, expected ...``. Supported hints:

* ``str``, ``bool``, ``int`` (any integer), :data:`U32` / :data:`U64` (unsigned ranges),
  ``float``;
* ``list[T]``, ``dict[str, T]`` (keys ordered, as in a ``BTreeMap``), ``T | None`` (also
  ``Optional[T]``; absent or ``null`` give ``None``);
* ``Literal["a", "b"]``: one of these strings (a unit-variant enum in Rust);
* a nested dataclass: an object; unknown fields are errors, fields without a default must
  be given (a field ``from_`` is written ``from`` in the settings);
* a class registered with :func:`read_as`, such as :class:`~tagpolicy_guest.Pattern`,
  :class:`~tagpolicy_guest.Patterns` or the types of :mod:`tagpolicy_guest.time`: read as
  another type, then converted; its ``ValueError`` becomes the field's error.

Example::

    >>> from dataclasses import dataclass, field
    >>> from tagpolicy_guest import Patterns
    >>> from tagpolicy_guest.settings import parse
    >>> @dataclass
    ... class Owner:
    ...     pattern: str
    ...     actors: list[str]
    >>> @dataclass
    ... class Settings:
    ...     owners: list[Owner]
    ...     mutable: Patterns = field(default_factory=Patterns)
    >>> parse('{"owners": [{"pattern": "v.*", "actors": ["release-bot"]}]}', Settings).owners
    [Owner(pattern='v.*', actors=['release-bot'])]
    >>> parse('{"owners": [{"pattern": "v.*", "actors": "release-bot"}]}', Settings)
    Traceback (most recent call last):
    ...
    tagpolicy_guest.settings.SettingsError: settings.owners[0].actors: invalid type: string "release-bot", expected a sequence
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, Callable, TypeVar

__all__ = ["U32", "U64", "SettingsError", "NoSettings", "parse", "read_as"]

T = TypeVar("T")


class SettingsError(Exception):
    """Settings the policy refuses. The message is shown to the operator as it is: name
    the field and the value that is wrong, e.g. ``settings.rules: empty; give at least one
    rule``. Raise it from ``configure``; :meth:`at` builds the usual prefix.

    Example::

        >>> from tagpolicy_guest import SettingsError
        >>> rules = []
        >>> if not rules:
        ...     raise SettingsError("settings.rules: empty; give at least one rule")
        Traceback (most recent call last):
        ...
        tagpolicy_guest.settings.SettingsError: settings.rules: empty; give at least one rule
    """

    @classmethod
    def at(cls, path: str, message: str) -> SettingsError:
        """An error about the field at ``path`` (``owners[0].actors``; ``""`` for the
        settings as a whole).

        Example::

            >>> from tagpolicy_guest import SettingsError
            >>> str(SettingsError.at("owners[0].actors", "empty; name at least one actor"))
            'settings.owners[0].actors: empty; name at least one actor'
            >>> str(SettingsError.at("", "give either `rules` or `preset`"))
            'settings: give either `rules` or `preset`'
        """
        return cls(f"settings.{path}: {message}" if path else f"settings: {message}")


@dataclasses.dataclass(frozen=True)
class _Integer:
    name: str
    low: int
    high: int


#: A JSON integer from 0 to 2^32 - 1 (Rust's ``u32``).
#:
#: Example::
#:
#:     >>> from dataclasses import dataclass
#:     >>> from tagpolicy_guest import U32
#:     >>> from tagpolicy_guest.settings import parse
#:     >>> @dataclass
#:     ... class Settings:
#:     ...     min_tags: U32
#:     >>> parse('{"min_tags": 3}', Settings)
#:     Settings(min_tags=3)
#:     >>> parse('{"min_tags": -1}', Settings)
#:     Traceback (most recent call last):
#:     ...
#:     tagpolicy_guest.settings.SettingsError: settings.min_tags: invalid value: integer `-1`, expected u32
U32 = typing.Annotated[int, _Integer("u32", 0, 2**32 - 1)]
#: A JSON integer from 0 to 2^64 - 1 (Rust's ``u64``).
#:
#: Example::
#:
#:     >>> from dataclasses import dataclass
#:     >>> from tagpolicy_guest import U64
#:     >>> from tagpolicy_guest.settings import parse
#:     >>> @dataclass
#:     ... class Settings:
#:     ...     max_bytes: U64
#:     >>> parse('{"max_bytes": 10000000000}', Settings)
#:     Settings(max_bytes=10000000000)
U64 = typing.Annotated[int, _Integer("u64", 0, 2**64 - 1)]
_I64 = _Integer("i64", -(2**63), 2**63 - 1)


@dataclasses.dataclass(frozen=True)
class NoSettings:
    """Settings of a policy that takes none: only ``{}`` is accepted. The default of
    :attr:`Policy.SETTINGS`.

    Example::

        >>> from tagpolicy_guest import NoSettings
        >>> from tagpolicy_guest.settings import parse
        >>> parse("{}", NoSettings)
        NoSettings()
        >>> parse('{"strict": true}', NoSettings)
        Traceback (most recent call last):
        ...
        tagpolicy_guest.settings.SettingsError: settings.strict: unknown field `strict`, there are no fields
    """


_CONVERTERS: dict[type, tuple[Any, str | None]] = {}


def read_as(wire: Any, via: str | None = None) -> Callable[[type[T]], type[T]]:
    """Class decorator: in settings, the class is written as ``wire`` (a type hint such as
    ``str`` or ``list[Pattern]``) and converted by calling the class, or its classmethod
    named ``via``. A ``ValueError`` raised by the conversion is reported at the field.

    Example::

        >>> from dataclasses import dataclass
        >>> from tagpolicy_guest import read_as
        >>> from tagpolicy_guest.settings import parse
        >>> @read_as(str, via="parse")
        ... class Team:
        ...     def __init__(self, name: str) -> None:
        ...         self.name = name
        ...     @classmethod
        ...     def parse(cls, text: str) -> "Team":
        ...         if not text.startswith("team-"):
        ...             raise ValueError(f"`{text}` is not a team such as `team-web`")
        ...         return cls(text)
        >>> @dataclass
        ... class Settings:
        ...     owner: Team
        >>> parse('{"owner": "team-web"}', Settings).owner.name
        'team-web'
        >>> parse('{"owner": "web"}', Settings)
        Traceback (most recent call last):
        ...
        tagpolicy_guest.settings.SettingsError: settings.owner: `web` is not a team such as `team-web`
    """

    def register(cls: type[T]) -> type[T]:
        _CONVERTERS[cls] = (wire, via)
        return cls

    return register


class _Object:
    """A JSON object with its keys in document order, duplicates kept (as serde sees it)."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        self.pairs = pairs


class _Invalid(Exception):
    """An error at ``path``, before the ``settings`` prefix."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def parse(text: str, schema: type[T]) -> T:
    """Read the settings JSON ``text`` as the dataclass ``schema``; raise
    :class:`SettingsError` naming the field path. The SDK reads a policy's settings with it
    (into :attr:`Policy.SETTINGS`); call it to try a settings class out.

    Example::

        >>> from dataclasses import dataclass
        >>> from tagpolicy_guest.settings import parse
        >>> @dataclass
        ... class Settings:
        ...     mutable: list[str]
        >>> parse('{"mutable": ["latest"]}', Settings)
        Settings(mutable=['latest'])
        >>> parse('{"mutabel": ["latest"]}', Settings)
        Traceback (most recent call last):
        ...
        tagpolicy_guest.settings.SettingsError: settings.mutabel: unknown field `mutabel`, expected `mutable`
    """
    try:
        value = json.loads(text, object_pairs_hook=_Object)
    except ValueError as err:
        raise SettingsError(f"settings: {getattr(err, 'msg', err)}") from None
    try:
        return _read(value, schema, "")
    except _Invalid as err:
        raise SettingsError.at(err.path, err.message) from None


def _read(value: Any, hint: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        base, *extras = typing.get_args(hint)
        integer = next((e for e in extras if isinstance(e, _Integer)), None)
        return _integer(value, integer, path) if integer else _read(value, base, path)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None and len(options) < len(typing.get_args(hint)):
            return None
        if len(options) != 1:
            raise TypeError(f"settings type {hint!r}: only `T | None` unions are supported")
        return _read(value, options[0], path)
    if origin is typing.Literal:
        return _variant(value, typing.get_args(hint), path)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise _Invalid(path, _invalid_type(value, "a sequence"))
        return [_read(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _, item = typing.get_args(hint)
        if not isinstance(value, _Object):
            raise _Invalid(path, _invalid_type(value, "a map"))
        read = {k: _read(v, item, _field(path, k)) for k, v in value.pairs}
        return dict(sorted(read.items()))
    if hint is str:
        if not isinstance(value, str):
            raise _Invalid(path, _invalid_type(value, "a string"))
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise _Invalid(path, _invalid_type(value, "a boolean"))
        return value
    if hint is int:
        return _integer(value, _I64, path)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Invalid(path, _invalid_type(value, "f64"))
        return float(value)
    if hint is Any:
        return _plain(value)
    if isinstance(hint, type) and hint in _CONVERTERS:
        wire, via = _CONVERTERS[hint]
        raw = _read(value, wire, path)
        try:
            return getattr(hint, via)(raw) if via else hint(raw)
        except ValueError as err:
            raise _Invalid(path, str(err)) from None
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _struct(value, hint, path)
    raise TypeError(f"settings type {hint!r} is not supported")


def _field(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _struct(value: Any, cls: type[T], path: str) -> T:
    if not isinstance(value, _Object):
        raise _Invalid(path, _invalid_type(value, f"struct {cls.__name__}"))
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {_key(f): f for f in dataclasses.fields(cls) if f.init}
    given: dict[str, Any] = {}
    for key, item in value.pairs:
        field = fields.get(key)
        if field is None:
            raise _Invalid(_field(path, key), f"unknown field `{key}`, {_expected(list(fields), 'field')}")
        if field.name in given:
            raise _Invalid(path, f"duplicate field `{key}`")
        given[field.name] = _read(item, hints[field.name], _field(path, key))
    for key, field in fields.items():
        if field.name in given:
            continue
        missing = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        if missing and _optional(hints[field.name]):
            given[field.name] = None
        elif missing:
            raise _Invalid(path, f"missing field `{key}`")
    return cls(**given)


def _key(field: dataclasses.Field[Any]) -> str:
    """The name of ``field`` in the settings: ``field(metadata={"key": ...})``, else the
    attribute name without a trailing ``_`` (``from_`` is ``from``)."""
    return field.metadata.get("key") or (field.name[:-1] if field.name.endswith("_") else field.name)


def _optional(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)


def _integer(value: Any, kind: _Integer, path: str) -> int:
    if isinstance(value, int) and not -(2**63) <= value <= 2**64 - 1:
        value = float(value)  # serde_json reads integers beyond 64 bits as floats
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(path, _invalid_type(value, kind.name))
    if not kind.low <= value <= kind.high:
        raise _Invalid(path, f"invalid value: integer `{value}`, expected {kind.name}")
    return value


def _variant(value: Any, names: tuple[str, ...], path: str) -> str:
    # serde_json reads an enum from a string (unit variant) or a one-key object.
    if isinstance(value, _Object) and value.pairs:
        (key, item), *rest = value.pairs
        variant = _variant(key, names, path)
        if item is not None:
            raise _Invalid(path, _invalid_type(item, "unit variant"))
        if rest:
            raise _Invalid(path, "expected value")
        return variant
    if not isinstance(value, str):
        raise _Invalid(path, "expected value")
    if value not in names:
        raise _Invalid(path, f"unknown variant `{value}`, {_expected(list(names), 'variant')}")
    return value


def _expected(names: list[str], what: str) -> str:
    quoted = [f"`{name}`" for name in names]
    if not quoted:
        return f"there are no {what}s"
    if len(quoted) == 1:
        return f"expected {quoted[0]}"
    if len(quoted) == 2:
        return f"expected {quoted[0]} or {quoted[1]}"
    return f"expected one of {', '.join(quoted)}"


def _invalid_type(value: Any, expected: str) -> str:
    return f"invalid type: {_unexpected(value)}, expected {expected}"


def _unexpected(value: Any) -> str:
    """How serde_json names a JSON value it did not expect."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        shown = f"{value:.1f}" if value.is_integer() and abs(value) < 1e16 else repr(value)
        return f"floating point `{shown}`"
    if isinstance(value, str):
        return f"string {_debug(value)}"
    if isinstance(value, list):
        return "sequence"
    return "map"


def _debug(text: str) -> str:
    """A string quoted as Rust's ``{:?}`` does."""
    escapes = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}
    out = []
    for c in text:
        if c in escapes:
            out.append(escapes[c])
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{{{ord(c):x}}}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def _plain(value: Any) -> Any:
    if isinstance(value, _Object):
        return {k: _plain(v) for k, v in value.pairs}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
