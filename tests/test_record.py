"""k3snode.record against the standard library's dataclasses, as the oracle: the same class written
with both must build, compare, hash, show, replace and refuse the same way."""

from __future__ import annotations

import copy
import dataclasses
import functools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k3snode import record as rec
from k3snode.record import FrozenInstanceError, field, record

# a field: (has a default?, default or factory?, compare, repr)
FIELD = st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans())
VALUE = st.one_of(
    st.integers(), st.text(max_size=5), st.none(), st.tuples(st.integers()), st.floats()
)


def build(
    spec: list[tuple[bool, bool, bool, bool]], frozen: bool, values: list
) -> tuple[type, type]:
    """The same class, as a record and as a dataclass. Fields with defaults come last."""
    spec = sorted(spec, key=lambda s: s[0])
    ns_r: dict = {"__annotations__": {}, "__doc__": "R"}
    ns_d: dict = {"__annotations__": {}, "__doc__": "D"}
    for i, (has_default, factory, compare, show) in enumerate(spec):
        name = f"f{i}"
        ns_r["__annotations__"][name] = ns_d["__annotations__"][name] = "object"
        default = values[i % len(values)]
        if has_default and factory:
            ns_r[name] = field(default_factory=lambda d=default: [d], compare=compare, repr=show)
            ns_d[name] = dataclasses.field(
                default_factory=lambda d=default: [d], compare=compare, repr=show
            )
        elif has_default:
            ns_r[name] = field(default=default, compare=compare, repr=show)
            ns_d[name] = dataclasses.field(default=default, compare=compare, repr=show)
        elif not (compare and show):
            ns_r[name] = field(compare=compare, repr=show)
            ns_d[name] = dataclasses.field(compare=compare, repr=show)
    r = record(frozen=frozen)(type("C", (), {**ns_r, "__module__": __name__}))
    d = dataclasses.dataclass(frozen=frozen)(type("C", (), {**ns_d, "__module__": __name__}))
    return r, d


def required(spec) -> int:
    return sum(1 for s in spec if not s[0])


@given(
    spec=st.lists(FIELD, max_size=6),
    frozen=st.booleans(),
    values=st.lists(VALUE, min_size=1, max_size=6),
    given_values=st.lists(VALUE, min_size=6, max_size=6),
    other_values=st.lists(VALUE, min_size=6, max_size=6),
)
def test_behaves_as_dataclasses(spec, frozen, values, given_values, other_values):
    R, D = build(spec, frozen, values)
    n = required(spec)
    args, other = given_values[:n], other_values[:n]
    r1, d1 = R(*args), D(*args)
    r2, d2 = R(*other), D(*other)
    assert repr(r1) == repr(d1)
    assert (r1 == r2) == (d1 == d2)
    assert (r1 == R(*args)) == (d1 == D(*args))
    assert [f.name for f in rec.fields(r1)] == [f.name for f in dataclasses.fields(d1)]
    assert rec.asdict(r1) == dataclasses.asdict(d1)
    if frozen:
        if all(not isinstance(v, list) for v in vars(r1).values()):  # hashable field values
            assert (hash(r1) == hash(R(*args))) and (hash(d1) == hash(D(*args)))
        with pytest.raises(FrozenInstanceError):
            r1.f0 = 1
        with pytest.raises(dataclasses.FrozenInstanceError):
            d1.f0 = 1
    else:
        with pytest.raises(TypeError):
            hash(r1)
        with pytest.raises(TypeError):
            hash(d1)
    if spec:
        changed_r, changed_d = (
            rec.replace(r1, f0=other_values[0]),
            dataclasses.replace(d1, f0=other_values[0]),
        )
        assert repr(changed_r) == repr(changed_d)
        assert changed_r.f0 is other_values[0]
    # too few or too many positional arguments: both refuse
    if n:
        with pytest.raises(TypeError):
            R(*args[:-1])
        with pytest.raises(TypeError):
            D(*args[:-1])
    with pytest.raises(TypeError):
        R(*args, *range(len(spec) - n + 1))
    with pytest.raises(TypeError):
        D(*args, *range(len(spec) - n + 1))


@record
class Peer:
    """A frozen record with a factory, a field out of equality, a property and __post_init__."""

    key: str
    allowed: tuple[str, ...] = ()
    seen: dict[str, float] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("empty key")

    @functools.cached_property
    def short(self) -> str:
        return self.key[:4]


@record(frozen=False)
class Counter:
    """A mutable record."""

    count: int = 0
    names: list[str] = field(default_factory=list)


def test_frozen_record():
    p = Peer("abcdefgh", ("10.0.0.0/8",))
    assert p == Peer("abcdefgh", ("10.0.0.0/8",), seen={"x": 1.0})  # seen: compare=False
    assert p != Peer("abcdefgh")
    assert hash(p) == hash(Peer("abcdefgh", ("10.0.0.0/8",)))
    assert repr(p) == "Peer(key='abcdefgh', allowed=('10.0.0.0/8',))"
    assert p.short == "abcd" and p.short is p.short  # cached_property works on a frozen record
    assert Peer.allowed == ()  # plain defaults stay class attributes, as with dataclasses
    assert Peer("a").seen is not Peer("b").seen  # one factory call per record
    with pytest.raises(FrozenInstanceError):
        p.key = "x"
    with pytest.raises(AttributeError):  # FrozenInstanceError is an AttributeError
        del p.allowed
    with pytest.raises(ValueError, match="empty key"):
        Peer("")
    with pytest.raises(ValueError, match="empty key"):  # replace runs __post_init__ again
        rec.replace(p, key="")
    with pytest.raises(TypeError, match="no field"):
        rec.replace(p, nope=1)
    with pytest.raises(TypeError):
        Peer(key="a", nope=1)
    assert copy.copy(p) == p and copy.deepcopy(p) == p
    assert rec.asdict(p) == {"key": "abcdefgh", "allowed": ("10.0.0.0/8",), "seen": {}}
    assert [f.name for f in rec.fields(Peer)] == ["key", "allowed", "seen"]


def test_mutable_record():
    c = Counter()
    c.count += 1
    c.names.append("x")
    assert c == Counter(1, ["x"]) and Counter().names == []
    with pytest.raises(TypeError):
        hash(c)


def test_mistakes_in_a_class_are_refused():
    with pytest.raises(ValueError, match="mutable default"):
        record(type("Bad", (), {"__annotations__": {"x": "list"}, "x": []}))
    with pytest.raises(TypeError, match="non-default argument 'y'"):
        record(type("Bad", (), {"__annotations__": {"x": "int", "y": "int"}, "x": 1}))
    with pytest.raises(ValueError, match="both"):
        field(default=1, default_factory=list)
    with pytest.raises(TypeError, match="not a record"):
        rec.fields(object())
