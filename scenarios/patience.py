"""How long each applicant keeps trying: the patience law of a rehearsal's clients.

An applicant gives up when its journey outlives its own patience, counted from its intended
start (`scenarios.journeys`). The law is `journeys.patience_law` with mean
`journeys.patience_s`:

* ``fixed``: every applicant has exactly the mean. Simple, but a rehearsal under a queue then
  sits on a knife edge: a whole cohort makes it or misses by the same fraction of a second, so
  a 2 % change in capacity moves the served count by about 20 %.
* ``exponential``: each applicant draws its own patience, exponential with that mean, cut at
  `CAP` times the mean (a 0.25 % tail, so the run's stop timeout is bounded). This is the law
  the national model prices (`analysis.backlog`: give-ups at rate 1/patience), so a rehearsal
  of this law stands for the system the plan was made for.

The draws come from the rehearsal's seeded generator after the journey, document and retry
draws, so a fixed law leaves every other draw as it was. Each applicant's patience is
written in arrivals.csv (`patience_s`), so the model of a rehearsal gives every simulated
applicant the patience its client had::

    >>> import numpy as np
    >>> draw_patience("fixed", 20.0, 3, np.random.default_rng(1)).tolist()
    [20.0, 20.0, 20.0]
    >>> p = draw_patience("exponential", 20.0, 20_000, np.random.default_rng(1))
    >>> round(float(p.mean()), 1), float(p.max()) <= CAP * 20.0
    (19.9, True)
    >>> patience_bound_s("exponential", 20.0), patience_bound_s("fixed", 20.0)
    (120.0, 20.0)
"""

from __future__ import annotations

import numpy as np

__all__ = ["CAP", "PATIENCE_LAWS", "draw_patience", "patience_bound_s"]

PATIENCE_LAWS = ("fixed", "exponential")
CAP = 6.0  # exponential draws are cut at CAP x the mean: P(Exp > 6 x mean) = e^-6 = 0.25 %


def draw_patience(law: str, mean_s: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """The patience (seconds) of `n` applicants under `law`, mean `mean_s`.

    A fixed law draws nothing from `rng`.
    """
    if law == "fixed":
        return np.full(n, float(mean_s))
    if law == "exponential":
        return np.minimum(rng.exponential(float(mean_s), size=n), CAP * float(mean_s))
    raise ValueError(f"patience law {law!r}: expected one of {', '.join(PATIENCE_LAWS)}")


def patience_bound_s(law: str, mean_s: float) -> float:
    """The longest patience any applicant of `law` can have (the run's stop timeout covers it)."""
    return float(mean_s) * (CAP if law == "exponential" else 1.0)
