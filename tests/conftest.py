"""Suite-wide pytest configuration: which tests must not run beside each other under xdist.

The suite runs on several xdist workers (`-n` in pyproject's addopts, `--dist loadgroup`).
Each group below runs on one worker, one test after another; the rest spread freely.
Mark a test here, by module, rather than in its file, so the reason stays in one place.
"""

from __future__ import annotations

import pytest

# module file name -> (xdist group, why its tests must not overlap)
SERIAL_GROUPS: dict[str, tuple[str, str]] = {
    # answers checked against a wall-clock window of a few seconds (a body/header timeout
    # bound, a healthz answered within 1 s while a slow client trickles)
    "test_security.py": ("wallclock", "timeout windows of +-3 s and a 1 s healthz bound"),
    "test_testbed_slowloris.py": ("wallclock", "header timeout bound of 4 x timeout + 2 s"),
    # an exclusive kernel resource: root network namespaces and a veth pair
    "test_netns_distributed.py": ("netns", "makes network namespaces and a veth pair as root"),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        group = SERIAL_GROUPS.get(item.path.name)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group[0]))
