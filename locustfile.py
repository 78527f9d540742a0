"""Entry for `locust -f locustfile.py`: the rehearsal lives in scenarios/locustfile.py.

    locust -f locustfile.py --headless --profile casn2024 --duration 60 --out runs/x

An entry point, like the `surgecast` command: with no --host it starts a testbed
(`testbed.process.TestbedServer`, a real process on a free loopback port) and stops it at exit.
"""

from scenarios.locustfile import STATE, Applicant, OpenModelShape  # noqa: F401  (Locust finds them here)
from testbed.process import TestbedServer


def _start_testbed(admin_token: str) -> TestbedServer:
    """A testbed on a free loopback port with this admin token (its database in a temporary
    folder)."""
    return TestbedServer(port=0, admin_token=admin_token, start_timeout_s=30.0).start()


STATE.start_target = _start_testbed
