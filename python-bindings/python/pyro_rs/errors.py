"""The exceptions of pyro_rs, with Pyro4's class names and hierarchy (``Pyro4.errors``).

On the wire they travel as ``Pyro4.errors.<Name>`` so Pyro4 peers rebuild their own
classes, and ``Pyro4.errors.<Name>`` from a peer is rebuilt as these classes.
"""

__all__ = [
    "CommunicationError",
    "ConnectionClosedError",
    "DaemonError",
    "MessageTooLargeError",
    "NamingError",
    "ProtocolError",
    "PyroError",
    "SecurityError",
    "SerializeError",
    "TimeoutError",
]


class PyroError(Exception):
    """Generic base of all Pyro errors."""


class CommunicationError(PyroError):
    """Network communication problems."""


class ConnectionClosedError(CommunicationError):
    """The connection was closed unexpectedly."""


class TimeoutError(CommunicationError):
    """A call or connect did not complete within the timeout."""


class ProtocolError(CommunicationError):
    """A message that does not follow the Pyro protocol, or a protocol related error."""


class MessageTooLargeError(ProtocolError):
    """A message exceeds the configured MAX_MESSAGE_SIZE."""


class NamingError(PyroError):
    """A name server or object naming problem."""


class DaemonError(PyroError):
    """The daemon encountered a problem."""


class SecurityError(PyroError):
    """A security related error (HMAC, refused class names)."""


class SerializeError(ProtocolError):
    """Data could not be serialized or deserialized."""
