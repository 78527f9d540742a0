"""`floor.atomic.dumps`: the same JSON as json.dumps, laid out one record per line."""

from __future__ import annotations

import json
import math
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from floor.atomic import _item_encoder, _layout, dumps

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False)
)
_keys = (
    st.text(max_size=6)
    | st.integers()
    | st.booleans()
    | st.none()
    | st.floats(allow_nan=False, allow_infinity=False)
)
_json = st.recursive(
    _scalars,
    lambda kids: (
        st.lists(kids, max_size=4)
        | st.tuples(kids, kids)
        | st.dictionaries(_keys, kids, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(_json)
def test_the_layout_is_the_same_json(obj):
    assert json.loads(dumps(obj)) == json.loads(json.dumps(obj, default=str))


def test_records_are_one_per_line_and_objects_indented():
    rows = [{"id": i, "serial": f"S{i:04d}", "ok": i % 2 == 0} for i in range(1000)]
    text = dumps({"run_id": "r", "stamps": rows, "totals": {"n": 1000, "by": {"a": 1}}})
    lines = text.splitlines()
    assert lines[:3] == ["{", '  "run_id": "r",', '  "stamps": [']
    assert lines[3] == '    {"id": 0, "serial": "S0000", "ok": true},'
    assert len(lines) == 1000 + 11
    assert '    "by": {' in lines and '      "a": 1' in lines


def test_what_json_refuses_it_refuses_and_what_it_converts_it_converts():
    assert json.loads(dumps({"when": date(2024, 9, 5)})) == {"when": "2024-09-05"}
    assert dumps({"x": math.nan}) == json.dumps({"x": math.nan}, indent=2)
    for bad in ({(1, 2): "tuple key"},):
        try:
            json.dumps(bad)
        except TypeError:
            pass
        else:  # pragma: no cover - json's own rule changed
            raise AssertionError("json.dumps took a tuple key")
        try:
            dumps(bad)
        except TypeError:
            continue
        raise AssertionError("dumps took a tuple key that json.dumps refuses")


def test_circular_data_is_refused_as_json_refuses_it():
    loop: list = []
    loop.append({"again": loop})
    for f in (json.dumps, dumps):
        try:
            f({"x": loop})
        except ValueError as e:
            assert "Circular" in str(e)
        else:
            raise AssertionError(f"{f.__module__}.dumps wrote circular data")


def test_a_broken_layout_is_caught():
    """The property above can fail: keys written with str() (True -> "True", not "true")."""

    def broken(v):
        if isinstance(v, dict) and v:
            return "{" + ", ".join(f"{json.dumps(str(k))}: {broken(x)}" for k, x in v.items()) + "}"
        return _layout(v, "", _item_encoder())

    obj = {True: 1, None: 2, 1.5: 3}
    assert json.loads(broken(obj)) != json.loads(json.dumps(obj))
    assert json.loads(dumps(obj)) == json.loads(json.dumps(obj))
