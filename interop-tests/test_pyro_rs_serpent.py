"""pyro_rs.serpent against serpent 1.43: its own test suite, a corpus and generated values."""

import array
import collections
import datetime
import decimal
import enum
import math
import os
import pathlib
import random
import struct
import subprocess
import sys
import uuid

import pyro_rs.serpent as rs
import pytest
import serpent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# scripts/test unpacks serpent 1.43's sdist (its test suite ships only there) into .venv/sdist.
SERPENT_TESTS = pathlib.Path(
    os.environ.get("PYRO_RS_SERPENT_SDIST", pathlib.Path(__file__).resolve().parent.parent / ".venv/sdist/serpent-1.43")
) / "tests"


def test_serpent_own_test_suite_passes(tmp_path):
    """serpent 1.43's tests/test_serpent.py run against pyro_rs.serpent through a shim."""
    if not (SERPENT_TESTS / "test_serpent.py").exists():
        pytest.skip("serpent 1.43 sdist not unpacked at " + str(SERPENT_TESTS))
    pytest.importorskip("attr")
    pytest.importorskip("pytz")
    (tmp_path / "serpent.py").write_text(
        "from pyro_rs.serpent import *  # noqa\n"
        "from pyro_rs.serpent import (_special_classes_registry, _reset_special_classes_registry,  # noqa\n"
        "                             Serializer, __version__, tobytes)\n")
    check = subprocess.run([sys.executable, "-c", "import serpent; print(serpent.Serializer.__module__)"],
                           cwd=SERPENT_TESTS, env={"PYTHONPATH": str(tmp_path)}, capture_output=True, text=True, check=False)
    assert check.stdout.strip() == "pyro_rs.serpent", check
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_serpent.py"],
                         cwd=SERPENT_TESTS, env={"PYTHONPATH": str(tmp_path)}, capture_output=True,
                         text=True, timeout=600, check=False)
    tail = run.stdout[-2000:]
    assert run.returncode == 0, tail
    assert "80 passed" in tail, tail


class Color(enum.Enum):
    RED = 1


class Plain:
    def __init__(self):
        self.b = 2
        self.a = 1


class WithState:
    def __getstate__(self):
        return {"state": 42}


class TupleState:
    def __getstate__(self):
        return ("bogus", "state")


class Slotted:
    __slots__ = ("s1", "s2")

    def __init__(self):
        self.s1 = 1
        self.s2 = "two"


class MyErr(Exception):
    pass


class MyStr(str):
    pass


def _err():
    e = MyErr("boom", 42)
    e.extra = "attr"
    return e


Point = collections.namedtuple("Point", "x y")

CORPUS = [
    None, True, False, -42, 2 ** 100, -(10 ** 300), 1.0, 0.1, 1e22, 1.5e-7, -0.0, float("inf"), float("-inf"),
    float("nan"), 2 + 3j, 2 - 3j, complex(1, -0.0), complex(float("inf"), 4), complex(float("nan"), 1),
    "", "it's", "quotes'\"", "\n\t\r\\\x00\x07\x7f", "caf\xe9\xa0\xad", "\u20ac\U0001F600", "\u2028\ufeff\ud800",
    "\U000f0000", b"abc\x00\xff", bytearray(b"hi"), memoryview(b"mv"), b"", [], [1, "a", None], (), (1,), (1, 2),
    ((1,),), {}, {"b": 1, "a": 2, 3: "x"}, {(1, 2): "t"}, set(), {3, 1, 2}, frozenset({"x"}),
    decimal.Decimal("1234.9999999999"), decimal.Decimal("NaN"), datetime.datetime(2013, 1, 20, 23, 59, 45, 999888),
    datetime.datetime(2013, 1, 20, 23, 59, 45, tzinfo=datetime.timezone.utc), datetime.date(2013, 1, 20),
    datetime.time(23, 59, 45, 999888), datetime.timedelta(1, 4000, 999888, minutes=22),
    uuid.UUID("12345678-1234-5678-1234-567812345678"), array.array("u", "unicode"), array.array("i", [44, 45]),
    ZeroDivisionError("wrong"), _err(), Plain(), WithState(), TupleState(), Slotted(), Color.RED, Point(1, 2),
    collections.OrderedDict(b=1, a=2), collections.deque([1, 2]), {"a": 1}.keys(), {"a": 1}.values(),
    {"a": 1}.items(), [1, (2,), {"b": 1, "a": [3]}], collections.Counter("aab"), collections.UserString("us"),
    collections.UserList([1]), collections.UserDict({"k": 1}), MyStr("abc"), {3: 1, "a": 2}, {(): 1, (1,): 2},
    [[[[[]]]]], {"x": [Plain(), {"y": (Color.RED, decimal.Decimal(1))}]},
]


@pytest.mark.parametrize("value", CORPUS, ids=lambda v: type(v).__name__)
@pytest.mark.parametrize("indent", [False, True])
@pytest.mark.parametrize("module_in_classname", [False, True])
@pytest.mark.parametrize("bytes_repr", [False, True])
def test_corpus_dumps_identical(value, indent, module_in_classname, bytes_repr):
    kw = {"indent": indent, "module_in_classname": module_in_classname, "bytes_repr": bytes_repr}
    assert rs.dumps(value, **kw) == serpent.dumps(value, **kw)


@pytest.mark.parametrize("value", CORPUS, ids=lambda v: type(v).__name__)
def test_corpus_loads_identical(value):
    data = serpent.dumps(value, bytes_repr=True)
    if isinstance(value, set) and len(value) > 1:
        assert rs.loads(data) == serpent.loads(data)
    else:
        assert repr(rs.loads(data)) == repr(serpent.loads(data))


@pytest.mark.parametrize("data", [
    b"", b"[1,", b"[1 2]", b"(,)", b"{[1]:2}", b"\xff", b"[1,\x00]", b"[" * 201 + b"]" * 201,
    b"9" * 4301, b"foo()", b"__import__('os')", "[1]", 42,
])
def test_bad_input_raises_like_serpent(data):
    with pytest.raises(Exception) as theirs:
        serpent.loads(data)
    with pytest.raises(Exception) as ours:
        rs.loads(data)
    assert type(ours.value) is type(theirs.value)


def test_errors_like_serpent():
    a = []
    a.append(a)
    for mod in (serpent, rs):
        with pytest.raises(ValueError, match=r"Circular reference detected \(list\)"):
            mod.dumps(a)
        with pytest.raises(TypeError):
            mod.dumps({None: 1})
        with pytest.raises(TypeError):
            mod.dumps(range(3))
    od = collections.OrderedDict(a=1)
    # serpent 1.43's OrderedDict cycle-check quirk, reproduced.
    for mod in (serpent, rs):
        with pytest.raises(ValueError, match="OrderedDict"):
            mod.dumps([od, od])


def _big(n, seed, neg):
    digits = (str(seed) * (n // max(len(str(seed)), 1) + 1))[:n].lstrip("0") or "0"
    return -int(digits) if neg else int(digits)


ints = st.one_of(st.integers(), st.builds(_big, st.integers(1, 4300), st.integers(1, 2 ** 64), st.booleans()))
texts = st.text(max_size=30)  # lone surrogates included: Python's repr handles them
hashables = st.recursive(
    st.one_of(st.booleans(), ints, st.floats(allow_nan=False), texts, st.complex_numbers(allow_nan=False)),
    lambda inner: st.lists(inner, max_size=4).map(tuple), max_leaves=6)
scalars = st.one_of(st.none(), st.booleans(), ints, st.floats(), texts, st.binary(max_size=40),
                    st.complex_numbers(), st.decimals(), st.datetimes(), st.dates(), st.uuids())
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.lists(inner, max_size=5).map(tuple),
        st.dictionaries(hashables, inner, max_size=5), st.sets(hashables, max_size=6),
        st.frozensets(st.integers(-300, 300), max_size=8)),
    max_leaves=25)

SETTINGS = settings(max_examples=600, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(values, st.booleans(), st.booleans(), st.booleans())
def test_generated_dumps_identical(value, indent, module_in_classname, bytes_repr):
    kw = {"indent": indent, "module_in_classname": module_in_classname, "bytes_repr": bytes_repr}
    assert rs.dumps(value, **kw) == serpent.dumps(value, **kw)


def _same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, complex):
        return _same(a.real, b.real) and _same(a.imag, b.imag)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return len(a) == len(b) and all(_same(k1, k2) and _same(v1, v2)
                                        for (k1, v1), (k2, v2) in zip(a.items(), b.items()))
    return a == b


@SETTINGS
@given(values, st.booleans())
def test_generated_loads_identical(value, bytes_repr):
    data = serpent.dumps(value, bytes_repr=bytes_repr, indent=True)
    assert _same(rs.loads(data), serpent.loads(data))


def test_short_strings_from_the_cache_are_the_right_ones():
    """Short strs are shared between parses on a thread (a small cache by content): many
    distinct short strings, colliding in it, repeated and mixed, still decode to what
    serpent gives."""
    rnd = random.Random(5)
    alphabet = "ab\xe9\u20ac\U0001F600'\"\\\n\t"
    pool = ["", "a", "b", "ab", "ba", "x" * 16, "x" * 17, "\xe9" * 8, "\xe9" * 9, "\U0001F600" * 4,
            "\U0001F600" * 5] + ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 18)))
                                 for _ in range(2000)]
    for round_ in range(3):
        rnd.shuffle(pool)
        doc = {s: [s, (s, round_)] for s in pool}
        data = serpent.dumps(doc)
        assert rs.loads(data) == serpent.loads(data) == doc


def test_long_strings_are_real_compact_strs():
    """Long ASCII text becomes a str made by copying its bytes into a new one-byte str (and
    long literals with escapes are decoded 32 bytes at a time): what comes back equals
    serpent's, hashes the same, has a plain str's size and encodes; non-ASCII text, escapes
    at every offset around the 32-byte steps and text ending anywhere in a step too."""
    line = "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n"
    texts = ["a" * 63, "a" * 64, "a" * 65, "b" * 1000, (line * 20000)[:1000000], "x" * 200 + "\xe9",
             "\xe9" + "x" * 200, "y" * 100 + "\U0001F600" + "y" * 100, "z" * 90 + "\x7f" + "z" * 40,
             "q" * 70 + "\\" + "'" + '"' + "\t\r" + "q" * 70]
    texts += ["p" * n + "\n" + "r" * m for n in (0, 1, 31, 32, 33, 63, 64) for m in (0, 1, 31, 32, 33, 95)]
    for text in texts:
        for data in (serpent.dumps(text), serpent.dumps([text, text[:70]]), serpent.dumps({"k": text})):
            got = rs.loads(data)
            assert _same(got, serpent.loads(data))
        got = rs.loads(serpent.dumps(text))
        assert type(got) is str and got == text and hash(got) == hash(text)
        assert sys.getsizeof(got) == sys.getsizeof(text), repr(text[:80])
        assert got.encode("utf-8") == text.encode("utf-8")
        assert got.isascii() == text.isascii()


def test_dict_keys_from_the_key_cache_are_the_right_ones():
    """The reprs of str dict keys are kept per thread by object: keys made at run time (so
    freed and their memory reused between dicts), colliding, repeated, at the size limit,
    with quotes, escapes and non-ASCII text, still give serpent's output, dict by dict."""
    rnd = random.Random(7)
    alphabet = "abc'\"\\\n\xe9\u20ac"
    fixed = ["", "a", "x" * 29, "x" * 30, "x" * 31, "it's", 'say "hi"', "both'\"", "tab\tnl\n", "\xe9t\xe9"]
    for round_ in range(300):
        keys = ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 33))) for _ in range(20)]
        keys += ["".join(k) for k in fixed]  # new objects with the same text
        doc = {k: round_ for k in keys}
        assert rs.dumps(doc) == serpent.dumps(doc)
        assert rs.dumps(doc) == serpent.dumps(doc)  # now from the cache
        nested = {"outer": doc, "list": [doc, {k: k for k in keys[:5]}]}
        assert rs.dumps(nested) == serpent.dumps(nested)


def test_nesting_limit_follows_sys_setrecursionlimit():
    """serpent refuses nesting deeper than sys.getrecursionlimit() // 5 at the time of the
    call; so does pyro_rs.serpent, before and after the limit is changed."""
    def nested(depth):
        top = cur = []
        for _ in range(depth):
            cur.append([])
            cur = cur[0]
        return top

    old = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(200)  # maximum_level 40
        assert rs.dumps(nested(35)) == serpent.dumps(nested(35))
        with pytest.raises(ValueError) as ours:
            rs.dumps(nested(45))
        with pytest.raises(ValueError) as theirs:
            serpent.dumps(nested(45))
        assert str(ours.value) == str(theirs.value)
    finally:
        sys.setrecursionlimit(old)
    assert rs.dumps(nested(45)) == serpent.dumps(nested(45))


def test_collections_wait_until_the_write_is_done():
    """The writer reads containers without reference counts, so no collection may run
    while it writes (one could run finalizers or gc.callbacks that change a dict being
    walked). With the threshold at 1 and a callback that empties the dict, dumps still
    gives the whole dict; the callback runs later; the collector's switch is as before."""
    import gc

    victim = {f"k{i}": ({i, i + 1}, [i, "x"], frozenset({f"v{i}"})) for i in range(50)}
    expected = serpent.dumps(victim)
    fired = []

    def clear_it(phase, info):
        if phase == "start":
            fired.append(len(victim))
            victim.clear()

    threshold = gc.get_threshold()
    gc.callbacks.append(clear_it)
    try:
        gc.set_threshold(1)
        out = rs.dumps(victim)
        assert gc.isenabled()
        gc.collect()
        gc.disable()
        rs.dumps({"a": {1, 2}})
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.set_threshold(*threshold)
        gc.callbacks.remove(clear_it)
    assert out == expected
    assert fired and victim == {}


def test_float_reprs_match_python():
    """Floats are written with the shortest round-trip digits, as Python's repr: random bit
    patterns, ties between two shortest strings (Python picks the even digit), and numbers
    that look decimal."""
    rnd = random.Random(11)
    floats = [-642124391318989.25, 5e-324, 2.5, 0.1 + 0.2, 1e16, 1e-5, 123456789.0 * 10 ** 9]
    while len(floats) < 60_000:
        f = struct.unpack("<d", rnd.getrandbits(64).to_bytes(8, "little"))[0]
        if math.isfinite(f):
            floats.append(f)
    floats += [rnd.randint(-10 ** 9, 10 ** 9) * 10.0 ** rnd.randint(-25, 25) for _ in range(20_000)]
    floats += [rnd.randint(0, 2 ** 53) + 0.25 * rnd.randint(1, 3) for _ in range(20_000)]
    assert rs.dumps(floats) == serpent.dumps(floats)
