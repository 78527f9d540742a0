"""The rehearsal's options: one set of flags for `surgecast rehearse` and `locust -f`, resolved
once.

`add_options(parser)` registers the custom flags on an argparse parser (Locust's
own parser in the locustfile, ours in the command). `resolve_settings` turns the
parsed flags plus what the target says about itself into a `RunSettings`, and
raises a `FieldError` naming the flag when something is wrong::

    >>> import argparse
    >>> p = argparse.ArgumentParser(); add_options(p, locust=False)
    >>> ns = p.parse_args(["--arrival-rate", "5", "--duration", "30s"])
    >>> s = resolve_settings(ns, host="http://127.0.0.1:1", target_config=None, embedded=False)
    >>> s.arrival_rate, s.duration_s, s.demand_multiplier
    (5.0, 30.0, 1.0)

Locust owns `--profile` (it groups test runs), so the rehearsal reuses that
flag's value as the surge profile; `--host` is Locust's too.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from floor.children import TOKEN_ENV
from floor.errors import FieldError
from floor.rundir.files import read_gate_schedule
from floor.timegrammar import parse_duration, parse_local_time
from scenarios.arrivals import ARRIVAL_SHAPES
from scenarios.profile import load_profile
from scenarios.profile_events import GateChange
from scenarios.profile_model import Profile
from scenarios.target import issuer_capacity
from scenarios.thresholds import Threshold, parse_threshold

DEFAULT_DURATION_S = 120.0
DEFAULT_USER_CAP = 1000
DEFAULT_MAX_RATE = 200.0
MAX_DURATION_S = 7 * 86400.0  # --duration: a rehearsal of at most a week of test time


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """Everything a rehearsal needs, resolved and validated."""

    host: str
    embedded: bool
    profile: Profile | None = field(default=None, repr=False)
    profile_name: str | None = None
    arrival_rate: float | None = None
    arrival_shape: str = "constant"             # --arrival-shape of an --arrival-rate run
    compress: float = 1.0
    scale: float = 1.0
    duration_s: float = DEFAULT_DURATION_S
    calendar_origin: datetime | None = None     # calendar time at test second 0
    window_end: datetime | None = None
    seed: int = 0
    user_cap: int = DEFAULT_USER_CAP
    max_rate: float | None = DEFAULT_MAX_RATE
    thresholds: tuple[Threshold, ...] = ()
    threshold_window_s: float = 30.0
    admin_token: str | None = None
    gate_events: tuple[GateChange, ...] = ()
    gates_file: str | None = None
    reuse_idempotency_keys: bool = True
    out: str | None = None
    quiet: bool = False
    headroom_s: float = 3.0
    workers: int = 1
    scale_note: str = ""
    sample_interval_s: float = 1.0             # test seconds between samples of the target's queues

    @property
    def demand_multiplier(self) -> float:
        """compress x scale: test applicants per second for each calendar applicant per second."""
        return round(self.compress * self.scale, 12)

    def calendar_at(self, test_s: float) -> datetime | None:
        """The calendar time at test second `test_s` (None for --arrival-rate runs)."""
        if self.calendar_origin is None:
            return None
        return self.calendar_origin + timedelta(seconds=self.compress * test_s)

    def test_seconds(self, calendar: datetime) -> float:
        """The test second at which the calendar reaches `calendar`."""
        assert self.calendar_origin is not None
        return (calendar - self.calendar_origin).total_seconds() / self.compress


# dest -> the type of its value, for values that arrive as text (Locust's web UI form).
_TYPES: dict[str, Any] = {}
NO_SURGE_PROFILE = "-"


def add_options(parser: Any, *, locust: bool) -> None:
    """Register the rehearsal's flags. With `locust=True` skip the ones Locust owns (--profile,
    --host) and add `--surge-profile`, the shipped profiles as a choice list in Locust's web UI."""
    def add(*names: str, web: bool = True, **kw: Any) -> None:
        if locust:
            kw["include_in_web_ui"] = web
        action = parser.add_argument(*names, **kw)
        _TYPES[action.dest] = bool if kw.get("action") == "store_true" else kw.get("type", str)

    if not locust:
        parser.add_argument("--profile", metavar="NAME|FILE",
                            help="surge profile (shipped name or TOML file)")
        parser.add_argument("--host", help="target base URL; none = start the embedded testbed")
    if locust:
        from scenarios.profile import available_profiles

        add("--surge-profile", default=NO_SURGE_PROFILE, choices=(NO_SURGE_PROFILE,
                                                                  *available_profiles()),
            help="surge profile to rehearse ('-': the one given with --profile, or none with "
                 "--arrival-rate); Locust's own Profile field only labels the run")
    add("--arrival-rate", type=float, default=None, metavar="R",
        help="constant arrivals per second instead of a profile")
    add("--arrival-shape", default=None, metavar="SHAPE",
        help="with --arrival-rate: constant (default) or flash-crowd (nobody for 5 s, then "
             "0 -> R/s within 1 s: a step test of the generator; not the flash-crowd "
             "profile, a calendar day with an 8x hour, given with --profile flash-crowd)")
    add("--compress", type=float, default=None, metavar="X",
        help="calendar seconds per test second "
        "(default: fit the window into --duration)")
    add("--scale", type=float, default=None, metavar="Y",
        help="fraction of the profile's applicants "
        "(default on the testbed: keep the profile's overload ratio)")
    add("--duration", default=None, metavar="T",
        help="run length, e.g. 120, 90s, 5m (default 120 s)")
    add("--window", default=None, metavar="START/END", help="calendar window to rehearse, e.g. "
        "2024-09-02T00:00/2024-09-07T00:00 (profile zone); default the whole registration window")
    add("--admin-token", default=os.environ.get(TOKEN_ENV) or None, metavar="T", web=False,
        help=f"bearer token of the target's admin API (default ${TOKEN_ENV}; children get it in "
             "the environment)")
    add("--seed", type=int, default=None, metavar="N",
        help="seed of arrivals, identities and behaviour")
    add("--user-cap", type=int, default=DEFAULT_USER_CAP, metavar="N",
        help="most Locust users in the pool")
    add("--max-rate", type=float, default=DEFAULT_MAX_RATE, metavar="R",
        help="cap on arrivals per second")
    _add_checks_and_output(add)


def _add_checks_and_output(add: Callable[..., None]) -> None:
    """The flags of thresholds, sampling, gates, retries and the run directory (`add_options`)."""
    add("--threshold", action="append", default=None, metavar="EXPR", web=False,
        help="e.g. 'stamp.p95<2s', 'errors<1%%', 'dropped<5%%:abort' (repeatable)")
    add("--threshold-window", type=float, default=30.0, metavar="S",
        help="sliding window of thresholds, s")
    add("--sample-interval", type=float, default=1.0, metavar="S",
        help="test seconds between samples of the target's queues into queue.csv (default 1; "
             "0.05 to 10)")
    add("--gates", default=None, metavar="FILE", help="a plan's gate_schedule.json to replay")
    add("--fresh-idempotency-keys", action="store_true", default=False,
        help="send a new Idempotency-Key on each retry (shows double ordering; for drills)")
    add("--allow-remote", action="store_true", default=False, help="allow a non-loopback --host")
    add("--out", default=None, metavar="DIR", web=False, help="run directory to write")
    add("--quiet", action="store_true", default=False, help="no progress line")
    add("--embedded-testbed", action="store_true", default=False, web=False,
        help="(set by surgecast rehearse) --host is the embedded testbed it started")


def web_value(dest: str, text: str) -> Any:
    """A rehearsal option's value from the text of a web form field ("" = not given).

    >>> import argparse; add_options(argparse.ArgumentParser(), locust=False)
    >>> web_value("arrival_rate", "2.5"), web_value("seed", ""), web_value("quiet", "true")
    (2.5, None, True)
    """
    kind = _TYPES.get(dest, str)
    text = text.strip()
    if kind is bool:
        return text.lower() in ("true", "on", "1", "yes")
    if text == "":
        return None
    try:
        return kind(text)
    except ValueError:
        flag = "--" + dest.replace("_", "-")
        raise FieldError(flag, text, f"give a {getattr(kind, '__name__', 'value')}") from None


def rehearsal_dests() -> tuple[str, ...]:
    """The option names (argparse dests) that `add_options` registered."""
    return tuple(_TYPES)


def load_gate_schedule(path: str, tz: Any) -> tuple[GateChange, ...]:
    """Read a plan's gate_schedule.json (floor.rundir.files, the one reader) as GateChanges.

    >>> import tempfile, os, zoneinfo
    >>> p = os.path.join(tempfile.mkdtemp(), "g.json")
    >>> _ = open(p, "w").write('[{"at": "2024-09-06T02:00:00+07:00", "gate": "ordering", '
    ...                        '"mode": "rate", "rate_per_s": 4, "burst": 40}]')
    >>> load_gate_schedule(p, zoneinfo.ZoneInfo("Asia/Jakarta"))[0].rate_per_s
    4.0
    """
    return tuple(GateChange(at=g["at"], gate=g["gate"], mode=g["mode"], rate_per_s=g["rate_per_s"],
                            burst=g["burst"], label=str(g.get("label", "")))
                 for g in read_gate_schedule(Path(path), flag="--gates", tz=tz))


def resolve_settings(ns: Any, *, host: str, target_config: dict[str, Any] | None, embedded: bool,
                     profile_value: str | None = None) -> RunSettings:
    """Validate the flags in `ns` and fill the defaults (see the module docstring).

    `target_config` is the target's `GET /admin/config` (None if it has none): it
    sizes `--scale` when not given. `profile_value` overrides `ns.profile`.
    """
    prof_arg = profile_value if profile_value is not None else getattr(ns, "profile", None)
    rate = ns.arrival_rate
    if prof_arg and rate is not None:
        raise FieldError("--arrival-rate", rate,
                         "give either --profile or --arrival-rate, not both")
    if not prof_arg and rate is None:
        raise FieldError("--profile", None,
                         "give --profile NAME|FILE (e.g. casn2024) or --arrival-rate R")
    duration = None if ns.duration is None else parse_duration(ns.duration, "--duration",
                                                               most_s=MAX_DURATION_S)
    common = _common_settings(ns, host=host, embedded=embedded)
    if rate is not None:
        return _rate_settings(ns, rate, duration, common)
    return _profile_settings(ns, prof_arg, duration, common, target_config)


def _common_settings(ns: Any, *, host: str, embedded: bool) -> dict[str, Any]:
    """The flags every run has, validated: RunSettings fields as a dict."""
    if ns.user_cap is None or ns.user_cap < 1 or ns.user_cap > 100_000:
        raise FieldError("--user-cap", ns.user_cap, "give a whole number from 1 to 100000")
    max_rate = ns.max_rate
    if max_rate is not None and (not math.isfinite(max_rate) or max_rate <= 0):
        raise FieldError("--max-rate", max_rate, "give a rate above 0 (arrivals per second)")
    if not (ns.threshold_window and 1 <= ns.threshold_window <= 3600):
        raise FieldError("--threshold-window", ns.threshold_window, "give seconds from 1 to 3600")
    thresholds = tuple(parse_threshold(t) for t in (ns.threshold or []))
    sample = getattr(ns, "sample_interval", None)
    sample = 1.0 if sample is None else sample
    if not (math.isfinite(sample) and 0.05 <= sample <= 10):
        raise FieldError("--sample-interval", sample,
                         "give test seconds between queue samples, 0.05 to 10")
    seed = ns.seed if ns.seed is not None else random.SystemRandom().randrange(2**31)
    if ns.compress is not None and (not math.isfinite(ns.compress) or ns.compress <= 0):
        raise FieldError("--compress", ns.compress,
                         "give calendar seconds per test second, above 0")
    if ns.scale is not None and (not math.isfinite(ns.scale) or not 0 < ns.scale <= 1):
        raise FieldError("--scale", ns.scale, "give a fraction in (0, 1]")
    common: dict[str, Any] = dict(
        host=host, embedded=embedded, seed=int(seed), user_cap=int(ns.user_cap), max_rate=max_rate,
        thresholds=thresholds, threshold_window_s=float(ns.threshold_window),
                                  admin_token=ns.admin_token,
        reuse_idempotency_keys=not ns.fresh_idempotency_keys, out=ns.out, quiet=bool(ns.quiet),
        gates_file=ns.gates, sample_interval_s=float(sample))
    common["embedded"] = embedded or bool(getattr(ns, "embedded_testbed", False))
    return common


def _rate_settings(ns: Any, rate: float, duration: float | None,
                   common: dict[str, Any]) -> RunSettings:
    """An --arrival-rate run (wall time, a constant or flash-crowd shape)."""
    if not math.isfinite(rate) or rate <= 0:
        raise FieldError("--arrival-rate", rate, "give arrivals per second above 0")
    for flag, v in (("--compress", ns.compress), ("--scale", ns.scale), ("--window", ns.window)):
        if v is not None:
            raise FieldError(flag, v, "only with --profile; --arrival-rate runs in wall time")
    shape = getattr(ns, "arrival_shape", None) or "constant"
    if shape not in ARRIVAL_SHAPES:
        raise FieldError("--arrival-shape", shape, f"choose one of: {', '.join(ARRIVAL_SHAPES)}")
    gates = ()
    if ns.gates:
        raise FieldError("--gates", ns.gates,
                         "a gate schedule needs a profile's calendar; add --profile")
    return RunSettings(arrival_rate=float(rate), arrival_shape=shape,
                       duration_s=duration or DEFAULT_DURATION_S,
                       gate_events=gates, **common)


def _profile_settings(ns: Any, prof_arg: str, duration: float | None, common: dict[str, Any],
                      target_config: dict[str, Any] | None) -> RunSettings:
    """A --profile run: its window, compression and scale."""
    if getattr(ns, "arrival_shape", None) is not None:
        raise FieldError("--arrival-shape", ns.arrival_shape,
                         "only with --arrival-rate; a profile has its own curve")
    profile = load_profile(prof_arg)
    cal = profile.calendar
    start, end = _window(ns, profile)
    span = (end - start).total_seconds()
    if ns.compress is None:
        duration = duration or DEFAULT_DURATION_S
        compress = span / duration
    else:
        compress = float(ns.compress)
        duration = duration or span / compress
        if duration > 7 * 86400:
            raise FieldError("--compress", ns.compress,
                             "the window would take over 7 days; compress more or give --duration")
    note = ""
    if ns.scale is not None:
        scale = float(ns.scale)
    else:
        cap = issuer_capacity(target_config)
        if cap is None:
            raise FieldError("--scale", None,
                             "the target has no /admin/config to size the rehearsal by; "
                             "give --scale (a fraction of the profile's applicants, e.g. 0.001)")
        multiplier = cap / profile.capacity.stamps_per_second
        scale = multiplier / compress
        note = (f"scale chosen so compress x scale = target capacity {cap:g}/s / profile capacity "
                f"{profile.capacity.stamps_per_second:g}/s = {multiplier:.4g}")
        if scale > 1:
            note += f"; capped at 1 (wanted {scale:.4g})"
            scale = 1.0
    gate_events = load_gate_schedule(ns.gates, cal.tz) if ns.gates else profile.reopening
    return RunSettings(profile=profile, profile_name=profile.name, compress=compress, scale=scale,
                       duration_s=float(duration), calendar_origin=start, window_end=end,
                       gate_events=gate_events, scale_note=note, **common)


def _window(ns: Any, profile: Any) -> tuple[Any, Any]:
    """The calendar window to rehearse: --window START/END, else the profile's whole window."""
    cal = profile.calendar
    if not ns.window:
        return cal.window_start, cal.close
    if "/" not in ns.window:
        raise FieldError("--window", ns.window,
                         "write START/END, e.g. 2024-09-02T00:00/2024-09-07T00:00")
    a, b = ns.window.split("/", 1)
    tz = profile.calendar.tz
    start, end = parse_local_time(a, tz, "--window"), parse_local_time(b, tz, "--window")
    if end <= start:
        raise FieldError("--window", ns.window, "END must be after START")
    if end <= cal.window_start or start >= cal.close:
        raise FieldError("--window", ns.window, f"must overlap the registration window "
                         f"{cal.window_start.isoformat()} .. {cal.close.isoformat()}")
    return start, end
