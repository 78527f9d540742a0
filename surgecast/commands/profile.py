"""`surgecast profile show NAME|FILE` and `surgecast profile list`."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `surgecast profile`."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = sub.add_parser("show", help="print the calendar, totals, peak hour and a sparkline")
    show.add_argument("profile", metavar="NAME|FILE", help="a shipped profile name or a TOML file")
    sub.add_parser("list", help="list the shipped profiles")
    sub_check = sub.add_parser("check", help="validate a profile and print nothing if it is good")
    sub_check.add_argument("profile", metavar="NAME|FILE")
    for p in (show, sub_check):
        p.error = parser.error  # type: ignore[method-assign]


def run(args: argparse.Namespace) -> int:
    """Run `surgecast profile ACTION`."""
    from scenarios.profile import available_profiles, load_profile

    if args.action == "list":
        for name in available_profiles():
            print(f"{name:<14} {load_profile(name).title}")
        return 0
    profile = load_profile(args.profile)
    if args.action == "show":
        from scenarios.show import render_profile

        print(render_profile(profile))
    return 0
