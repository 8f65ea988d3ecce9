"""pyro-rs: Pyro4-compatible Python Remote Objects with a Rust core.

The drop-in Pyro4 API is being built; today this package exposes the native core's
version information.
"""

from pyro_rs._native import core_version, protocol_version

__version__ = core_version()
PROTOCOL_VERSION = protocol_version()

__all__ = ["__version__", "PROTOCOL_VERSION", "core_version", "protocol_version"]
