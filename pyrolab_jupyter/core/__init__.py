"""The runtime, with no Jupyter import anywhere: services, daemons, the watching nameserver, the client.

``service``/``schema`` describe and validate, ``servant``/``daemon``/``locks``/
``publish`` host, ``nameserver`` watches, ``client``/``proxies``/``subscriptions``
use, ``serialization`` carries numpy, ``config`` reads lab files.
"""
