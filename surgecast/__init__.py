"""surgecast: rehearse a registration surge before it happens, and plan the way through it.

The command package: nothing else imports it. The version is `floor.version.__version__`.
"""
