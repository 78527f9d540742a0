"""One seed for every generator: random, numpy and Faker.

    >>> import random
    >>> _ = seed(7); a = random.random()
    >>> _ = seed(7); a == random.random()
    True
"""

from __future__ import annotations

import random

import numpy as np


def seed(n: int) -> np.random.Generator:
    """Seed `random`, numpy's legacy global state and Faker; return a fresh numpy Generator.

    >>> g = seed(1)
    >>> float(g.random()) == float(seed(1).random())
    True
    """
    random.seed(n)
    np.random.seed(n % 2**32)
    try:
        from faker import Faker
    except ImportError:  # Faker is a dependency; stay usable in minimal analysis installs
        pass
    else:
        Faker.seed(n)
    return np.random.default_rng(n)
