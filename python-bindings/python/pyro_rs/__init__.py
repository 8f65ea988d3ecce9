"""pyro-rs: Pyro4-compatible Python Remote Objects with a Rust core.

Use it as ``import pyro_rs as Pyro4``: the same names, exceptions and semantics, with
sockets, framing, HMAC and the serializers in Rust.
"""

from pyro_rs import constants, errors  # noqa: F401
from pyro_rs._native import core_version, protocol_version
from pyro_rs.configuration import config
from pyro_rs.core import (
                          URI,
                          Daemon,
                          DaemonObject,
                          Proxy,
                          asyncproxy,
                          batch,
                          behavior,
                          callback,
                          current_context,
                          expose,
                          oneway,
)
from pyro_rs.core import _locateNS as locateNS
from pyro_rs.core import _resolve as resolve
from pyro_rs.futures import Future

__version__ = core_version()
PROTOCOL_VERSION = protocol_version()

__all__ = [
                          "PROTOCOL_VERSION",
                          "URI",
                          "Daemon",
                          "DaemonObject",
                          "Future",
                          "Proxy",
                          "__version__",
                          "asyncproxy",
                          "batch",
                          "behavior",
                          "callback",
                          "config",
                          "core_version",
                          "current_context",
                          "expose",
                          "locateNS",
                          "oneway",
                          "protocol_version",
                          "resolve",
]
