"""The runtime, with no Jupyter import anywhere: services, daemons, the watching nameserver, the client.

``service``/``schema`` describe and validate, ``servant``/``daemon``/``locks``/
``publish``/``poller`` host, ``nameserver`` watches, ``client``/``members``/
``proxies``/``subscriptions`` use (``mailbox`` coalesces both ends of a
subscription), ``serialization`` carries numpy and per-value errors,
``tracebacks`` and ``timefmt`` make errors and times readable, ``config``
reads lab files.
"""
