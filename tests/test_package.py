"""The package's public face, and that importing it has no side effects."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import types

import pyrolab_jupyter
from pyrolab_jupyter import errors


def test_all_matches_exports():
    ours = {
        name for name, obj in vars(pyrolab_jupyter).items()
        if not name.startswith("_") and not isinstance(obj, types.ModuleType)
        and getattr(obj, "__module__", "").startswith("pyrolab_jupyter")
    }
    assert sorted(pyrolab_jupyter.__all__) == pyrolab_jupyter.__all__
    assert set(pyrolab_jupyter.__all__) == ours | {"errors"}
    for name in pyrolab_jupyter.__all__:
        assert hasattr(pyrolab_jupyter, name)


def test_errors_inherit_the_builtin_they_mean():
    assert issubclass(errors.InvalidArgument, ValueError)
    assert issubclass(errors.CallTimeout, TimeoutError)
    assert issubclass(errors.ServiceOffline, ConnectionError)
    assert issubclass(errors.ConfigError, ValueError)
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.PyroLabError)


def test_import_has_no_side_effects():
    probe = textwrap.dedent("""
        import sys, threading, copy
        from Pyro5 import config
        before = copy.deepcopy(config.as_dict())
        threads = threading.active_count()
        import pyrolab_jupyter, pyrolab_jupyter.core.client, pyrolab_jupyter.hosting
        assert threading.active_count() == threads, "a thread was started"
        assert config.as_dict() == before, "Pyro5 config changed"
        jupyter = [m for m in sys.modules if m.split('.')[0] in
                   ('IPython', 'ipywidgets', 'ipykernel', 'jupyter_server', 'jupyterlab', 'tornado')]
        assert not jupyter, jupyter
        print("clean")
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "clean", out.stderr


def test_core_imports_with_jupyter_blocked():
    probe = textwrap.dedent("""
        import sys
        for name in ('IPython', 'ipywidgets', 'ipykernel', 'tornado', 'jupyter_server'):
            sys.modules[name] = None
        import pyrolab_jupyter.core.client, pyrolab_jupyter.core.daemon, pyrolab_jupyter.core.nameserver
        import pyrolab_jupyter.core.config, pyrolab_jupyter.hosting, pyrolab_jupyter.instruments.sim
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr
