"""`surgecast queue --arrival-rate L --service-rate MU --servers C [--patience P] [--json]`.

Erlang C (M/M/c) figures, or Erlang A (M/M/c+M) with `--patience` (mean patience in
seconds, exponential), which stays valid in overload (L >= C x MU)::

    surgecast queue --arrival-rate 10 --service-rate 1 --servers 12
    surgecast queue --arrival-rate 30 --service-rate 0.5 --servers 50 --patience 120 --json
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from floor.errors import FieldError


def _number(flag: str):  # noqa: ANN202 - argparse type factory
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise FieldError(flag, text, "give a number") from None
        if not math.isfinite(v):
            raise FieldError(flag, text, "give a finite number")
        return v
    return parse


def _servers(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise FieldError("--servers", text, "give a whole number of servers >= 1") from None
    return v


def _add_number(parser: argparse.ArgumentParser, flag: str, **kw: Any) -> None:
    """A flag that takes a finite number; a bad value is a FieldError naming `flag`."""
    parser.add_argument(flag, type=_number(flag), **kw)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `surgecast queue`."""
    _add_number(parser, "--arrival-rate", required=True, metavar="L", help="arrivals per second")
    _add_number(
        parser, "--service-rate", required=True, metavar="MU", help="services per second per server"
    )
    parser.add_argument(
        "--servers", type=_servers, required=True, metavar="C", help="number of servers"
    )
    _add_number(
        parser,
        "--patience",
        metavar="P",
        help="mean patience in seconds (Erlang A); without it, Erlang C",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def _clean(v: float) -> float | None:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def run(args: argparse.Namespace) -> int:
    """Print the queueing figures."""
    from analysis.queueing import check_inputs, erlang_a, erlang_b, mmc

    check_inputs(args.arrival_rate, args.service_rate, args.servers, args.patience)
    lam, mu, c = args.arrival_rate, args.service_rate, args.servers
    if args.patience is None:
        r = mmc(arrival_rate=lam, service_rate=mu, servers=c)
        out = {
            "model": "M/M/c (Erlang C)",
            "p_wait": r.p_wait,
            "mean_wait": _clean(r.mean_wait),
            "mean_queue": _clean(r.mean_queue),
            "utilisation": r.utilisation,
            "stable": r.stable,
            "wait_p50": _clean(r.wait_percentile(0.5)),
            "wait_p95": _clean(r.wait_percentile(0.95)),
            "wait_p99": _clean(r.wait_percentile(0.99)),
        }
    else:
        a = erlang_a(arrival_rate=lam, service_rate=mu, servers=c, patience=args.patience)
        out = {
            "model": "M/M/c+M (Erlang A)",
            "p_wait": a.p_wait,
            "mean_wait": a.mean_wait,
            "mean_queue": a.mean_queue,
            "utilisation": a.utilisation,
            "p_abandon": a.p_abandon,
            "throughput": a.throughput,
        }
    out["p_block"] = erlang_b(c, lam / mu)  # Erlang B: the share refused by c servers with no queue
    out.update(
        {"arrival_rate": lam, "service_rate": mu, "servers": c, "offered_load_erlangs": lam / mu}
    )
    if args.patience is not None:
        out["patience"] = args.patience
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(
        f"{out['model']}: arrivals {lam:g}/s, {c} servers x {mu:g}/s, offered load "
        f"{lam / mu:.4g} erlangs"
    )
    print(f"  utilisation        {out['utilisation']:.1%}")
    print(f"  P(wait)            {out['p_wait']:.4f}")
    print(f"  P(block), no queue {out['p_block']:.4f}   (Erlang B)")
    mw = out["mean_wait"]
    unbounded = "unbounded (lambda >= c mu: the queue grows without limit)"
    print(f"  mean wait          {unbounded if mw is None else f'{mw:.4g} s'}")
    mq = out["mean_queue"]
    print(f"  mean queue         {'unbounded' if mq is None else f'{mq:.4g}'}")
    if args.patience is None and out["stable"]:
        print(
            f"  wait p50/p95/p99   {out['wait_p50']:.4g} / {out['wait_p95']:.4g} / "
            f"{out['wait_p99']:.4g} s"
        )
    if args.patience is not None:
        print(f"  P(abandon)         {out['p_abandon']:.4f}   (mean patience {args.patience:g} s)")
        print(f"  served per second  {out['throughput']:.4g}")
    return 0
