"""Name server client functions (``Pyro4.naming``). The name server itself (``NameServer``,
``startNS``) comes with the server half of pyro_rs."""

from pyro_rs.core import _locateNS as locateNS
from pyro_rs.core import _resolve as resolve

__all__ = ["locateNS", "resolve"]
