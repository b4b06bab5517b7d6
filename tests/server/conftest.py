"""pytest-jupyter's real-server fixtures (``jp_fetch``), for the tests in this directory only.

Imported here rather than listed in ``pytest_plugins``: pytest-jupyter's autouse fixtures
(an event loop and a server clean-up per test) would otherwise run around every test of
the suite and trip the ones that manage their own loops and servers.
"""

from pytest_jupyter.jupyter_server import *  # noqa: F403
