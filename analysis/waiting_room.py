"""waiting_room.json: per stage, the settings of the waiting-room products put in front of
such a service.

For each stage of the recommended plan, from the admission rate the plan gives its
gates (applicants per second; one applicant is one session):

- **Cloudflare Waiting Room**: `new_users_per_minute` = the admission rate per minute
  (Cloudflare's minimum is 200); `session_duration_minutes` = how long a session stays
  active without a request (Cloudflare allows 1 to 30, default 5; we use the journey's
  time on the site, at least 5); `total_active_users` = 75% of the origin's concurrent
  capacity (Cloudflare's configuration guidance: "set to 75% of origin traffic capacity"),
  the origin's concurrent capacity being, by Little's law, the issuer's capacity in
  sessions per minute x the session duration (minimum 200).
- **Virtual Waiting Room on AWS** (the periodic inlet strategy raises the serving counter
  by a fixed increment every minute): `increment_per_minute` = the admission rate per minute.
- **Queue-it**: `max_outflow_per_minute` (visitors let out of the queue per minute) = the
  admission rate per minute.

The admission rate is the binding control in all three; Cloudflare's active-user cap
is a guard for sessions in flight, not a throttle on the issuer.

    >>> rooms = settings([{"id": "s", "start": "2024-09-05T20:00:00+07:00", "admit_per_s": 5.0}],
    ...                  capacity_per_s=5.45, session_minutes=5.0)
    >>> r = rooms["stages"][0]
    >>> aws = r["aws_virtual_waiting_room"]
    >>> r["cloudflare"]["new_users_per_minute"], aws["increment_per_minute"]
    (300, 300)
    >>> r["cloudflare"]["total_active_users"]
    1226
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["settings", "CLOUDFLARE_SHARE", "CLOUDFLARE_MIN"]

CLOUDFLARE_SHARE = (
    0.75  # Cloudflare docs: total active users "set to 75% of origin traffic capacity"
)
CLOUDFLARE_MIN = 200  # Cloudflare: total_active_users and new_users_per_minute are at least 200


def settings(
    stages: Sequence[dict[str, Any]], *, capacity_per_s: float, session_minutes: float
) -> dict[str, Any]:
    """waiting_room.json from stages with `id`, `start` and `admit_per_s` (see module doc)."""
    session = int(min(30, max(5, math.ceil(session_minutes))))
    out = []
    for s in stages:
        admit_min = max(0.0, float(s["admit_per_s"])) * 60.0
        per_min = int(round(admit_min))
        concurrent = capacity_per_s * 60.0 * session
        tau = max(CLOUDFLARE_MIN, int(round(CLOUDFLARE_SHARE * concurrent)))
        nupm = max(CLOUDFLARE_MIN, per_min)
        basis = (
            "the plan's rate for this stage"
            if s.get("basis", "plan") == "plan"
            else "the gate is open: the issuer's capacity, "
            "so the room only holds what the issuer cannot take"
        )
        why = (
            f"admit {per_min:,} applicants a minute ({basis}). Cloudflare: "
            f"new_users_per_minute {nupm:,}"
            + (" (its minimum is 200)" if nupm != per_min else "")
            + f"; total_active_users {tau:,} = 75% of the origin's concurrent capacity "
            f"({capacity_per_s * 60:,.0f} sessions a minute x {session} min, Little's law), "
            f"Cloudflare's guidance; session_duration_minutes {session} "
            "(time on the site per visit). AWS periodic inlet: "
            f"raise the serving counter by {per_min:,} each minute. "
            f"Queue-it: max outflow {per_min:,} a minute."
        )
        out.append(
            {
                "id": s["id"],
                "start": s["start"],
                "cloudflare": {
                    "total_active_users": tau,
                    "new_users_per_minute": nupm,
                    "session_duration_minutes": session,
                },
                "aws_virtual_waiting_room": {"increment_per_minute": per_min},
                "queue_it": {"max_outflow_per_minute": per_min},
                "why": why,
            }
        )
    return {"stages": out}
