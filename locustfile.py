"""Entry for `locust -f locustfile.py`: the rehearsal lives in scenarios/locustfile.py.

    locust -f locustfile.py --headless --profile casn2024 --duration 60 --out runs/x
"""

from scenarios.locustfile import Applicant, OpenModelShape  # noqa: F401  (Locust finds them here)
