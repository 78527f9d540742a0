"""The reference e-Meterai-like service that surgecast rehearses against.

It reproduces the 2024 journey (register, log in, buy quota, pay, stamp a PDF)
with a capacity that is known because it is configured: a serial-number issuer
and a payment gateway, each a pool of workers with a service-time distribution
and a bounded queue; admission gates; faults; a ledger with an audit.

Start it with ``surgecast testbed`` or, from code and tests::

    from testbed.process import TestbedServer
    with TestbedServer(port=0) as tb:
        print(tb.url, tb.admin_token)

Nothing in scenarios/ imports this package: the target is reached over HTTP only.
"""
