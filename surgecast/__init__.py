"""surgecast: rehearse a registration surge before it happens, and plan the way through it."""

__version__ = "0.1.0"
