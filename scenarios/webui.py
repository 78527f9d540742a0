"""Locust's web UI at home: START resolves the rehearsal from the edited form, or says why not.

Locust's own START handler (`POST /swarm`) copies the form into `parsed_options` and starts the
load shape; a rehearsal resolved at init would ignore every edit. `guard_swarm` puts a check in
front of it: `check(form)` resolves the settings from the form (returning None) or returns the
reason not to start, which the web UI shows under its form (`{"success": false, "message": ...}`).

    >>> from flask import Flask
    >>> app = Flask("t"); app.add_url_rule("/swarm", "swarm", lambda: "started", methods=["POST"])
    >>> guard_swarm(app, lambda form: None if form.get("seed") else "give a seed")
    >>> app.test_client().post("/swarm", data={"seed": "3"}).text
    'started'
    >>> app.test_client().post("/swarm", data={}).json
    {'message': 'give a seed', 'success': False}

`explain_open_model(app)` hides the Users, Ramp up and Run time fields (Locust shows them disabled
at 0 for a load shape) and says instead that arrivals come from the open model: the pool of users
is sized by the shape, and the run's length is the Duration custom parameter.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


def guard_swarm(app: Any, check: Callable[[dict[str, str]], str | None]) -> None:
    """Wrap the Flask view `swarm` of Locust's web UI with `check(form) -> None | reason`."""
    from flask import jsonify, request

    endpoint = next(
        r.endpoint for r in app.url_map.iter_rules() if r.rule.rstrip("/").endswith("/swarm")
    )
    original = app.view_functions[endpoint]

    @functools.wraps(original)
    def swarm(*args: Any, **kwargs: Any) -> Any:
        reason = check({k: v for k, v in request.form.items()})
        if reason is not None:
            return jsonify({"success": False, "message": reason})
        return original(*args, **kwargs)

    app.view_functions[endpoint] = swarm


OPEN_MODEL_NOTE = (
    "Open model: applicants arrive at the rehearsal's rate (Arrival rate, or the surge profile) "
    "whatever the service does; the pool of Locust users is sized for them, so there is no "
    "Users or Ramp up to set. The run lasts Duration (custom parameters below)."
)

_HIDE_COMMON = """<script>(() => {
  const note = %s;
  new MutationObserver(() => {
    for (const name of ["userCount", "spawnRate", "runTime"]) {
      const box = document.querySelector(`input[name="${name}"]`)?.closest(".MuiFormControl-root");
      if (box && box.style.display !== "none") box.style.display = "none";
    }
    const form = document.querySelector("form");
    if (form && !document.getElementById("surgecast-open-model")) {
      const p = document.createElement("p");
      p.id = "surgecast-open-model"; p.textContent = note; p.style.margin = "8px 0";
      form.prepend(p);
    }
  }).observe(document.documentElement, {childList: true, subtree: true});
})();</script>"""


def explain_open_model(app: Any) -> None:
    """Hide Locust's Users/Ramp up/Run time fields in the web UI's pages and explain the open
    model."""
    import json

    snippet = (_HIDE_COMMON % json.dumps(OPEN_MODEL_NOTE)).encode()

    @app.after_request
    def _inject(response: Any) -> Any:
        if response.mimetype == "text/html" and not response.direct_passthrough:
            body = response.get_data()
            if b"</body>" in body:
                response.set_data(body.replace(b"</body>", snippet + b"</body>", 1))
        return response
