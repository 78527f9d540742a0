"""The flags `surgecast plan` and `surgecast forecast` share: the profile, the issuer's
capacity (a probe's capacity.json or a figure), its outage and its overload physics.

    >>> import argparse
    >>> p = argparse.ArgumentParser()
    >>> add_surge_inputs(p); add_overload(p)
    >>> a = p.parse_args(["--profile", "casn2024", "--stamps-per-second", "12"])
    >>> a.profile, a.stamps_per_second, a.capacity, a.outage, a.overload
    ('casn2024', '12', None, None, None)
"""

from __future__ import annotations

import argparse
import math

from floor.errors import FieldError


def add_surge_inputs(parser: argparse.ArgumentParser) -> None:
    """--profile, one of --capacity and --stamps-per-second, and --outage.

    >>> p = argparse.ArgumentParser()
    >>> add_surge_inputs(p)
    >>> p.parse_args(["--profile", "x", "--capacity", "c.json", "--outage", "A/B"]).outage
    'A/B'
    """
    parser.add_argument(
        "--profile",
        required=True,
        metavar="NAME|FILE",
        help="a shipped profile name or a TOML file",
    )
    cap = parser.add_mutually_exclusive_group()
    cap.add_argument(
        "--capacity", metavar="capacity.json", help="stamps/s and the USL fit measured by a probe"
    )
    cap.add_argument(
        "--stamps-per-second", metavar="C", help="issuer capacity in stamps per second"
    )
    parser.add_argument(
        "--outage",
        metavar="START/END",
        help="issuer outage, ISO local times (default: the profile's)",
    )


def stamps_per_second(text: str) -> float:
    """--stamps-per-second as a number, or a FieldError naming the flag (both commands say the
    same thing of the same mistake).

    >>> stamps_per_second("12.5")
    12.5
    >>> stamps_per_second("-3")
    Traceback (most recent call last):
    ...
    floor.errors.FieldError: --stamps-per-second = '-3': give a capacity > 0 stamps per second
    """
    try:
        v = float(text)
    except (TypeError, ValueError):
        v = math.nan
    if not (math.isfinite(v) and v > 0):
        raise FieldError("--stamps-per-second", text, "give a capacity > 0 stamps per second")
    return v


def add_overload(parser: argparse.ArgumentParser) -> None:
    """--overload: how the issuer behaves past its capacity (default: the profile's).

    >>> p = argparse.ArgumentParser()
    >>> add_overload(p)
    >>> p.parse_args(["--overload", "unbounded"]).overload
    'unbounded'
    """
    parser.add_argument(
        "--overload",
        choices=("shed", "unbounded"),
        help="issuer overload physics (default: the profile's): shed refuses the excess; "
        "unbounded works on requests whose client gave up, and past its peak throughput falls",
    )
