"""The floor room: what every other room stands on; it imports nothing of the project.

    errors      the error family (exit codes) and `render(exc)`, the one line the CLI prints
    atomic      write files whole or not at all (temporary file + rename)
    jsonhttp    the one JSON-over-HTTP client outside Locust (urllib errors mapped once)
    children    signals, child environments with the admin token, children that stop with their
                launcher
    entry       what every entry point shares: one-line usage errors, errors rendered once,
                exit codes
    netaddr     is an address loopback (a --host URL or a bind address)
    launcher    a child process that prints "listening on URL": start, stop, kill, stderr tail
    timegrammar durations (90s, 5m, 1h30m, 1d) and ISO 8601 times, one grammar
    tomlfile    read a TOML file, and a typed reader of its tables that names each field
    vocabulary  gates, gate modes, resources, journeys, steps, outcomes
    version     the version of surgecast
"""
