"""Typed records: what k3snode used of ``@dataclass(frozen=True)``, at a fraction of its start-up cost.

Why not ``dataclasses`` (measured, Python 3.11, this project's 56 record classes): the standard
decorator compiles six generated methods per frozen class (``__init__``, ``__repr__``,
``__eq__``, ``__hash__``, ``__setattr__``, ``__delattr__``: ≈ 0.64 ms per class) and imports
``inspect``, ``ast``, ``dis`` and ``tokenize`` (≈ 5 ms). The 36 records a ``k3snode run`` makes
before ``READY=1`` cost ≈ 28 ms of its start — K3s waits for it (issue 14: ≤ python + 60 ms on bare
metal). Here only ``__init__`` is generated (one ``compile``, ≈ 0.1 ms, so making a record is as
fast as with ``dataclasses``); equality, hash, repr and immutability are shared methods.
``tests/test_record.py`` checks the behaviour against ``dataclasses`` itself.

The surface is the standard one, so a record reads like a dataclass::

    @record
    class Peer:
        \"\"\"A WireGuard peer.\"\"\"

        public_key: str
        endpoint: str | None = None
        allowed_ips: tuple[str, ...] = ()
        seen: dict[str, float] = field(default_factory=dict, compare=False)

``@record`` is frozen (assignment raises ``FrozenInstanceError``, an ``AttributeError``);
``@record(frozen=False)`` is mutable and unhashable. ``__post_init__`` runs after ``__init__``;
``fields``, ``replace`` and ``asdict`` work as ``dataclasses``' do. Not supported (k3snode uses
none): inheritance between records, ``ClassVar``/``InitVar`` fields, ordering, slots, keyword-only
fields. Static type checkers see ``dataclasses.dataclass`` (the ``TYPE_CHECKING`` branch).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

_MISSING: Any = object()  # "no default"; also __init__'s marker for "call the factory"
_MUTABLE = (list, dict, set)


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen record."""


class Field(NamedTuple):
    """One field: its name, default or default factory, and whether it is compared and shown."""

    name: str = ""
    default: Any = _MISSING
    default_factory: Any = _MISSING
    compare: bool = True
    repr: bool = True


def field(
    *,
    default: Any = _MISSING,
    default_factory: Callable[[], Any] | Any = _MISSING,
    compare: bool = True,
    repr: bool = True,
) -> Any:
    """A field with a default factory, or left out of equality (``compare``) or repr."""
    if default is not _MISSING and default_factory is not _MISSING:
        raise ValueError("cannot specify both default and default_factory")
    return Field("", default, default_factory, compare, repr)


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is not self.__class__:
        return NotImplemented
    names = self.__record_compare__
    return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)


def _hash(self: Any) -> int:
    return hash(tuple(getattr(self, n) for n in self.__record_compare__))


def _repr(self: Any) -> str:
    shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__record_repr__)
    return f"{self.__class__.__qualname__}({shown})"


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _fields_of(cls: type) -> tuple[Field, ...]:
    if any(hasattr(base, "__record_fields__") for base in cls.__mro__[1:]):
        raise TypeError(f"{cls.__name__}: records do not inherit from records")
    out = []
    # the class's own annotations (no record base, and object has none)
    for name, annotation in getattr(cls, "__annotations__", {}).items():
        if str(annotation).startswith(("ClassVar", "typing.ClassVar", "InitVar")):
            raise TypeError(f"{cls.__name__}.{name}: ClassVar/InitVar fields are not supported")
        value = cls.__dict__.get(name, _MISSING)
        f = value._replace(name=name) if isinstance(value, Field) else Field(name, value)
        if isinstance(f.default, _MUTABLE):
            raise ValueError(
                f"{cls.__name__}.{name}: mutable default {type(f.default).__name__}; "
                "use default_factory"
            )
        out.append(f)
    return tuple(out)


def _init(cls: type, fields: tuple[Field, ...], frozen: bool) -> Callable[..., None]:
    """``__init__`` compiled for the class: arguments in field order, defaults from the class."""
    env: dict[str, Any] = {"_MISSING": _MISSING}
    params, body = [], ["d = self.__dict__"] if frozen else []
    seen_default = False
    for f in fields:
        n = f.name
        if f.default is not _MISSING:
            env[f"_d_{n}"] = f.default
            params.append(f"{n}=_d_{n}")
        elif f.default_factory is not _MISSING:
            env[f"_f_{n}"] = f.default_factory
            params.append(f"{n}=_MISSING")
            body.append(f"if {n} is _MISSING: {n} = _f_{n}()")
        elif seen_default:
            raise TypeError(f"{cls.__name__}: non-default argument {n!r} follows default argument")
        else:
            params.append(n)
        seen_default = (
            seen_default or f.default is not _MISSING or f.default_factory is not _MISSING
        )
        body.append(f"d[{n!r}] = {n}" if frozen else f"self.{n} = {n}")
    if "__post_init__" in cls.__dict__:
        body.append("self.__post_init__()")
    src = f"def __init__(self, {', '.join(params)}):\n    " + "\n    ".join(body or ["pass"])
    exec(src, env)
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _process(cls: type, frozen: bool) -> type:
    fields = _fields_of(cls)
    for f in fields:  # plain defaults stay class attributes (as with dataclasses); factories not
        if f.default is not _MISSING:
            setattr(cls, f.name, f.default)
        elif f.name in cls.__dict__:
            delattr(cls, f.name)
    cls.__record_fields__ = fields  # type: ignore[attr-defined]
    cls.__record_compare__ = tuple(f.name for f in fields if f.compare)  # type: ignore[attr-defined]
    cls.__record_repr__ = tuple(f.name for f in fields if f.repr)  # type: ignore[attr-defined]
    cls.__init__ = _init(cls, fields, frozen)  # type: ignore[misc]
    if "__repr__" not in cls.__dict__:
        cls.__repr__ = _repr  # type: ignore[assignment]
    if "__eq__" not in cls.__dict__:
        cls.__eq__ = _eq  # type: ignore[assignment]
    if frozen:
        cls.__setattr__ = _frozen_setattr  # type: ignore[assignment]
        cls.__delattr__ = _frozen_delattr  # type: ignore[assignment]
        if "__hash__" not in cls.__dict__ or cls.__dict__["__hash__"] is None:
            cls.__hash__ = _hash  # type: ignore[assignment]
    elif "__hash__" not in cls.__dict__:
        cls.__hash__ = None  # type: ignore[assignment]
    return cls


def _record(cls: type | None = None, *, frozen: bool = True) -> Any:
    """``@record`` (frozen) or ``@record(frozen=False)``."""
    if cls is None:
        return lambda c: _process(c, frozen)
    return _process(cls, frozen)


def fields(obj: Any) -> tuple[Field, ...]:
    """The record's (or record class's) fields, in order."""
    try:
        return obj.__record_fields__
    except AttributeError:
        raise TypeError(f"{obj!r} is not a record") from None


def replace(obj: Any, **changes: Any) -> Any:
    """A new record like ``obj`` with ``changes`` (``__init__`` and ``__post_init__`` run again)."""
    for name in changes:
        if not any(f.name == name for f in fields(obj)):
            raise TypeError(f"{type(obj).__name__} has no field {name!r}")
    values = {f.name: getattr(obj, f.name) for f in fields(obj)}
    return obj.__class__(**{**values, **changes})


def asdict(obj: Any) -> dict[str, Any]:
    """The record as plain dicts, lists and copies, recursively (as ``dataclasses.asdict``)."""
    fields(obj)
    return _plain(obj)


def _plain(value: Any) -> Any:
    if hasattr(type(value), "__record_fields__"):
        return {f.name: _plain(getattr(value, f.name)) for f in value.__record_fields__}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*[_plain(v) for v in value])
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return type(value)((_plain(k), _plain(v)) for k, v in value.items())
    return copy.deepcopy(value)


if TYPE_CHECKING:  # what type checkers and editors understand
    from dataclasses import dataclass as record
else:
    record = _record
