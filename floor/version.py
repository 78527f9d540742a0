"""The version of surgecast (pyproject reads it from here).

    >>> __version__
    '0.1.0'
"""

__version__ = "0.1.0"
