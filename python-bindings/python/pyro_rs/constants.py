"""Pyro4's constants (``Pyro4.constants``)."""

from pyro_rs._native import protocol_version as _protocol_version

#: The Pyro4 release whose behaviour pyro_rs follows.
VERSION = "4.82"
DAEMON_NAME = "Pyro.Daemon"
NAMESERVER_NAME = "Pyro.NameServer"
FLAME_NAME = "Pyro.Flame"
PROTOCOL_VERSION = _protocol_version()
