"""The fluid engine's state between steps: the three gates and the schedule of stages."""

from __future__ import annotations

import math
from collections.abc import Sequence

from analysis.backlog.model import Gate, Stage, StageRecord
from floor.vocabulary import GATES, GateMode

__all__ = ["GateState", "Schedule", "STAMPING"]

_OPEN, _RATE = GateMode.OPEN, GateMode.RATE
STAMPING = GATES.index("stamping")
_GATE_INDEX = {g: i for i, g in enumerate(GATES)}


def _first_step(at_s: float, t0: float, dt: float) -> int:
    """The first step index whose start is at or after at_s."""
    return max(0, int(math.ceil((at_s - t0) / dt - 1e-9)))


class GateState:
    """The state of the three gates, indexed in `GATES` order: mode, rate x step, burst, room
    cap, tokens, room content, orbit, rate, the step the rate was set, the share of the room
    that gives up per step, who wanted in during the last step; `held`: the stamping room is
    booked and held (`Gate.keep` and `Gate.hold`)."""

    def __init__(self, f_ab: float) -> None:
        inf = math.inf
        self.f_ab = f_ab
        self.mode = [_OPEN, _OPEN, _OPEN]
        self.rdt, self.burst, self.room = [inf] * 3, [inf] * 3, [inf] * 3
        self.tok, self.w, self.orb = [0.0] * 3, [0.0] * 3, [0.0] * 3
        self.rate, self.since, self.fab = [inf] * 3, [0, 0, 0], [f_ab] * 3
        self.want = [0.0] * 3
        self.held = False

    def is_clear(self, j: int, k: int) -> bool:
        """Clear: the gate has been rate-limited for a step or more and everyone who wanted in
        during the last step got in (its demand is below its rate)."""
        if self.mode[j] is not _RATE:
            return True
        return k > self.since[j] and self.want[j] <= self.rdt[j] and self.w[j] <= 1.0

    def set(
        self, j: int, gate: Gate, k: int, cap_step: float, dt: float
    ) -> dict[str, float | str | None]:
        """Apply `gate` to gate j at step k (cap_step: issuer work per step, for rate_share);
        return its record for the stage log."""
        inf = math.inf
        mode = GateMode(gate.mode)
        self.mode[j] = mode
        if mode is not _RATE:
            self.rate[j] = inf if mode is _OPEN else 0.0
            self.fab[j] = self.f_ab
            if j == STAMPING:
                self.held = False
            self.rdt[j], self.burst[j], self.room[j] = inf, inf, inf
            return {"mode": gate.mode, "rate_per_s": None, "burst": None, "room": None}
        r = gate.rate_per_s if gate.rate_per_s is not None else gate.rate_share * cap_step / dt
        self.rate[j] = r
        self.rdt[j] = r * dt
        self.burst[j] = gate.burst if gate.burst is not None else max(1.0, r * dt)
        if gate.room is not None:
            self.room[j] = gate.room
        else:
            self.room[j] = r * gate.room_s if gate.room_s is not None else inf
        if j == STAMPING:
            self.held = gate.keep and gate.hold
        if gate.keep:
            self.room[j] = inf
            self.w[j] += self.orb[j]  # booked: those deferred from this gate are given a slot too
            self.orb[j] = 0.0
        self.fab[j] = 0.0 if gate.keep else self.f_ab
        self.tok[j] = min(self.tok[j], self.burst[j])
        self.since[j] = k
        return {
            "mode": "rate",
            "rate_per_s": r,
            "burst": self.burst[j],
            "room": None if self.room[j] == inf else self.room[j],
        }


class Schedule:
    """The stages still to come, the log of those started and the throttles in force."""

    def __init__(self, stages: Sequence[Stage], t0: float, dt: float, n: int) -> None:
        self.pending = list(stages)
        self.t0, self.dt, self.n = t0, dt, n
        self.log: list[StageRecord] = []
        self.index = -1
        self.prev_start = t0
        self.thr_s = self.thr_p = 1.0
        self.k_next = _first_step(self.pending[0].at_s, t0, dt) if self.pending else n

    def advance(self, k: int, gates: GateState, qs: float, qp: float, cap_step: float) -> None:
        """Start every stage due at step k (state at the start of the step), in order."""
        while self.pending and k >= self.k_next:
            st = self.pending[0]
            t = self.t0 + k * self.dt
            if t + 1e-9 < st.at_s or not self._ready(st, t, k, gates, qs, qp):
                return
            self.pending.pop(0)
            self.k_next = (
                _first_step(self.pending[0].at_s, self.t0, self.dt) if self.pending else self.n
            )
            self.index += 1
            rec = {
                g: gates.set(_GATE_INDEX[g], gate, k, cap_step, self.dt)
                for g, gate in st.gates.items()
            }
            if st.issuer_share is not None:
                self.thr_s = st.issuer_share
            if st.payments_share is not None:
                self.thr_p = st.payments_share
            self.prev_start = t
            self.log.append(
                StageRecord(
                    name=st.name,
                    index=k,
                    start_s=t,
                    gates=rec,
                    issuer_share=self.thr_s,
                    payments_share=self.thr_p,
                    why=st.why,
                )
            )

    def _ready(self, st: Stage, t: float, k: int, gates: GateState, qs: float, qp: float) -> bool:
        if st.when == "time":
            return True
        if st.max_delay_s is not None and t + 1e-9 >= self.prev_start + st.max_delay_s:
            return True
        if st.when == "drained":
            return qs <= st.drained_below and qp <= st.drained_below
        return gates.is_clear(_GATE_INDEX[st.when[6:]], k)
