"""The profile loader: shipped profiles load, casn2024 passes its calibration points, bad fields are
named, and no random input makes it raise anything but ProfileError."""

from __future__ import annotations

import contextlib
import copy
import tomllib
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from floor.errors import ProfileError
from scenarios.curve import ArrivalCurve
from scenarios.profile import (
    SECTIONS,
    available_profiles,
    load_profile,
    parse_profile,
    resolve_profile_path,
)
from scenarios.profile_events import CONVERSION_FLOOR

pytestmark = pytest.mark.timeout(120)


def _raw(name: str) -> dict:
    return tomllib.loads(resolve_profile_path(name).read_text())


@pytest.mark.parametrize("name", ["casn2024", "flash-crowd", "steady"])
def test_shipped_profiles_load(name):
    assert name in available_profiles()
    p = load_profile(name)
    assert p.name == name
    assert ArrivalCurve(p).cumulative(p.calendar.span_s) == pytest.approx(
        p.applicants_total, rel=1e-6
    )


def test_casn2024_marks_its_holdouts():
    # The fit may use only the in-sample points; the rest are hold-outs (issue 9).
    p = load_profile("casn2024")
    roles = {(pt.at.strftime("%m-%d %H:%M"), pt.kind): pt.role for pt in p.calibration}
    assert roles[("09-04 17:00", "submitted")] == "in-sample"
    assert roles[("09-05 08:00", "submitted")] == "in-sample"
    assert sum(r == "holdout" for r in roles.values()) == 4
    assert sum(r == "in-sample" for r in roles.values()) == 2
    # demand is never the final count: conversion x final accounts, at least 0.90 of them
    assert p.applicants_total == round(p.demand.conversion * p.demand.accounts[-1][1])


@pytest.mark.parametrize(
    "path, value, field",
    [
        (("calendar", "deadline"), "2024-13-01", "calendar.deadline"),
        (("calendar", "deadline"), "2024-08-01T00:00:00", "calendar.deadline"),
        (("applicants", "total"), -5, "applicants.total"),
        (("applicants", "stamps_per_applicant"), {"2": 0.5}, "applicants.stamps_per_applicant"),
        (("journeys", "mix"), {"new_applicant": 0.5, "tourist": 0.5}, "journeys.mix.tourist"),
        (("journeys", "think_time_s"), [3, 1], "journeys.think_time_s"),
        (("journeys", "patience_s"), 0, "journeys.patience_s"),
        (("journeys", "patience_law"), "gamma", "journeys.patience_law"),
        (("journeys", "patience_law"), 3, "journeys.patience_law"),
        (("journeys", "retry_mix"), {"refresh": 2.0}, "journeys.retry_mix"),
        (("arrivals", "daily_cycle"), [1.0] * 23, "arrivals.daily_cycle"),
        (("profile", "timezone"), "Mars/Olympus", "profile.timezone"),
        (("capacity", "stamps_per_second"), 0, "capacity.stamps_per_second"),
        (("profile", "nmae"), "x", "profile.nmae"),
    ],
)
def test_bad_fields_are_named(path, value, field):
    d = copy.deepcopy(_raw("steady"))
    d.setdefault(path[0], {})[path[1]] = value
    with pytest.raises(ProfileError) as e:
        parse_profile(d)
    assert e.value.field == field, str(e.value)
    assert "\n" not in str(e.value)


def test_bad_outage_and_reopening_are_named():
    d = _raw("casn2024")
    d["outages"][0]["resource"] = "printer"
    with pytest.raises(ProfileError, match=r"outages\[0\]\.resource"):
        parse_profile(d)
    d = _raw("casn2024")
    d["reopening"][3]["rate_share"] = -1
    with pytest.raises(ProfileError, match=r"reopening\[3\]\.rate_share"):
        parse_profile(d)
    d = _raw("casn2024")
    d["reopening"][3]["rate_per_s"] = 4
    with pytest.raises(ProfileError, match=r"not both"):
        parse_profile(d)


@pytest.mark.parametrize(
    "section, key, value, field",
    [
        ("demand", "conversion", 1.5, "demand.conversion"),
        ("demand", "conversion", 1e-10, "demand.conversion"),  # below CONVERSION_FLOOR
        ("demand", "pull", 0, "demand.pull"),
        (
            "demand",
            "accounts",
            [["2024-08-20T00:00:00", 5], ["2024-08-19T00:00:00", 6]],
            "demand.accounts[1]",
        ),
        (
            "demand",
            "accounts",
            [["2024-08-20T00:00:00", 5], ["2024-08-21T00:00:00", 4]],
            "demand.accounts[1]",
        ),
        ("demand", "retarget_share", -0.1, "demand.retarget_share"),
        ("bypass", "share", 2, "bypass.share"),
        ("overload", "mode", "melt", "overload.mode"),
        ("behaviour", "persistence_days", 0, "behaviour.persistence_days"),
        ("ranges", "demand.conversion", [1.0, 0.9], "ranges.demand.conversion"),
        ("calibration", "role", "peeked", "calibration[0].role"),
    ],
)
def test_bad_surge_model_fields_are_named(section, key, value, field):
    d = copy.deepcopy(_raw("casn2024"))
    if section == "calibration":
        d["calibration"][0][key] = value
    else:
        d[section][key] = value
    with pytest.raises(ProfileError) as e:
        parse_profile(d)
    assert e.value.field == field, str(e.value)


def test_unknown_profile_name_suggests_the_close_one():
    with pytest.raises(ProfileError, match="did you mean 'casn2024'"):
        load_profile("casn2042")


# ---- fuzzing: any TOML-ish input loads or raises ProfileError, never anything else ----------
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**12),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "2024-09-06T23:59:00",
            "open",
            "rate",
            "issuer",
            "Asia/Jakarta",
            "new_applicant",
            "backoff",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(
            sorted(SECTIONS | {"extra"})  # every section the loader knows, and one it does not
        ),
        values,
        max_size=8,
    )
)
def test_fuzz_random_dicts_load_or_raise_profile_error(d):
    with contextlib.suppress(ProfileError):
        parse_profile(d)


_BASE = _raw("casn2024")
_PATHS = [(k, f) for k, v in _BASE.items() if isinstance(v, dict) for f in v]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_PATHS), values)
@example(("demand", "pull"), 60.0)  # L^pull overflowed to inf in the curve (nan stock)
@example(("demand", "conversion"), 2.2250738585e-313)  # found 4 December: the scale was inf
def test_fuzz_one_field_of_a_good_profile(path, value):
    d = copy.deepcopy(_BASE)
    d[path[0]][path[1]] = value
    try:
        p = parse_profile(d)
    except ProfileError:
        return
    # a profile that loads also gives a curve (or ProfileError for an all-zero curve), computed
    # without an overflow: a value too big to compute is refused by name, never turned into inf
    with contextlib.suppress(ProfileError), warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        c = ArrivalCurve(p)
        assert np.isfinite(c.cumulative(c.span_s)), path


@pytest.mark.parametrize("factor, conversion", [(1e-300, CONVERSION_FLOOR), (1e-20, 0.5),
                                                (1e20, 1.0)])
def test_the_curve_is_the_same_whatever_the_unit_of_its_accounts(factor, conversion):
    """The curve is scaled to `applicants.total`, so neither the accounts series' unit nor the
    conversion (a share of every inflow) can move it. Found by the fuzz above (a conversion of
    2.2e-313): a shape of tiny mass made the scale 4e6 / 1e-310 = inf and every rate inf; such a
    mass is now scaled by its largest step first (any other as before, to the last bit, which
    tests/test_fixtures.py holds the committed plans to). 1e-300 accounts at the least
    conversion make a mass of about 4e-303, whose scale (1e309) is past a float's range, though
    every step of it is an ordinary float."""
    base = ArrivalCurve(parse_profile(copy.deepcopy(_BASE)))
    d = copy.deepcopy(_BASE)
    d["demand"]["accounts"] = [[t, n * factor] for t, n in d["demand"]["accounts"]]
    d["demand"]["conversion"] = conversion
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        c = ArrivalCurve(parse_profile(d))
    t = np.linspace(0.0, base.span_s, 97)
    assert c.cumulative(base.span_s) == pytest.approx(base.cumulative(base.span_s), rel=1e-9)
    assert np.allclose(c.cumulative(t), base.cumulative(t), rtol=1e-6, atol=1e-3)
    assert np.allclose(c.rate(t), base.rate(t), rtol=1e-6, atol=1e-9)
