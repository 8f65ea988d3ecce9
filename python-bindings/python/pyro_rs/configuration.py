"""Configuration items of Pyro4 4.82, each settable by its ``PYRO_<ITEM>`` variable."""

import os
import pickle
import platform
import socket

from pyro_rs import constants


class Configuration:
    """Pyro4's ``Configuration``: the same items, defaults and environment rules."""

    __slots__ = (
        "AUTOPROXY",
        "BROADCAST_ADDRS",
        "COMMTIMEOUT",
        "COMPRESSION",
        "DETAILED_TRACEBACK",
        "DILL_PROTOCOL_VERSION",
        "FLAME_ENABLED",
        "HOST",
        "ITER_STREAMING",
        "ITER_STREAM_LIFETIME",
        "ITER_STREAM_LINGER",
        "JSON_MODULE",
        "LOGWIRE",
        "MAX_MESSAGE_SIZE",
        "MAX_RETRIES",
        "METADATA",
        "NATHOST",
        "NATPORT",
        "NS_AUTOCLEAN",
        "NS_BCHOST",
        "NS_BCPORT",
        "NS_HOST",
        "NS_PORT",
        "ONEWAY_THREADED",
        "PICKLE_PROTOCOL_VERSION",
        "POLLTIMEOUT",
        "PREFER_IP_VERSION",
        "REQUIRE_EXPOSE",
        "SERIALIZER",
        "SERIALIZERS_ACCEPTED",
        "SERVERTYPE",
        "SOCK_NODELAY",
        "SOCK_REUSE",
        "SSL",
        "SSL_CACERTS",
        "SSL_CLIENTCERT",
        "SSL_CLIENTKEY",
        "SSL_CLIENTKEYPASSWD",
        "SSL_REQUIRECLIENTCERT",
        "SSL_SERVERCERT",
        "SSL_SERVERKEY",
        "SSL_SERVERKEYPASSWD",
        "THREADPOOL_SIZE",
        "THREADPOOL_SIZE_MIN",
        "USE_MSG_WAITALL",
    )

    def __init__(self):
        self.reset()

    def reset(self, useenvironment=True):
        """Set the defaults, then (unless told not to) apply the PYRO_* variables."""
        self.HOST = "localhost"
        self.NS_HOST = self.HOST  # copied before the environment is read, as Pyro4 does
        self.NS_PORT = 9090
        self.NS_BCPORT = 9091
        self.NS_BCHOST = None
        self.NS_AUTOCLEAN = 0.0
        self.NATHOST = None
        self.NATPORT = 0
        self.COMPRESSION = False
        self.SERVERTYPE = "thread"
        self.COMMTIMEOUT = 0.0
        self.POLLTIMEOUT = 2.0
        self.SOCK_REUSE = True
        self.SOCK_NODELAY = False
        self.ONEWAY_THREADED = True
        self.DETAILED_TRACEBACK = False
        self.THREADPOOL_SIZE = 40
        self.THREADPOOL_SIZE_MIN = 4
        self.AUTOPROXY = True
        self.MAX_MESSAGE_SIZE = 0
        self.BROADCAST_ADDRS = "<broadcast>, 0.0.0.0"
        self.FLAME_ENABLED = False
        self.PREFER_IP_VERSION = 4
        self.SERIALIZER = "serpent"
        self.SERIALIZERS_ACCEPTED = "serpent,marshal,json"
        self.LOGWIRE = False
        self.PICKLE_PROTOCOL_VERSION = pickle.HIGHEST_PROTOCOL
        try:
            import dill
            self.DILL_PROTOCOL_VERSION = dill.HIGHEST_PROTOCOL
        except ImportError:
            self.DILL_PROTOCOL_VERSION = -1
        self.METADATA = True
        self.REQUIRE_EXPOSE = True
        self.USE_MSG_WAITALL = hasattr(socket, "MSG_WAITALL") and platform.system() != "Windows"
        self.JSON_MODULE = "json"
        self.MAX_RETRIES = 0
        self.ITER_STREAMING = True
        self.ITER_STREAM_LIFETIME = 0.0
        self.ITER_STREAM_LINGER = 30.0
        self.SSL = False
        self.SSL_SERVERCERT = ""
        self.SSL_SERVERKEY = ""
        self.SSL_SERVERKEYPASSWD = ""
        self.SSL_REQUIRECLIENTCERT = False
        self.SSL_CLIENTCERT = ""
        self.SSL_CLIENTKEY = ""
        self.SSL_CLIENTKEYPASSWD = ""
        self.SSL_CACERTS = ""
        if useenvironment:
            for symbol in self.__slots__:
                text = os.environ.get("PYRO_" + symbol)
                if text is None:
                    continue
                current = getattr(self, symbol)
                if current is None:
                    value = text  # None defaults take the raw string
                elif type(current) is bool:
                    lowered = text.lower()
                    if lowered in ("0", "off", "no", "false"):
                        value = False
                    elif lowered in ("1", "yes", "on", "true"):
                        value = True
                    else:
                        raise ValueError(f"invalid boolean value: PYRO_{symbol}={lowered}")
                else:
                    value = type(current)(text)
                setattr(self, symbol, value)
        self.SERIALIZERS_ACCEPTED = set(self.SERIALIZERS_ACCEPTED.split(","))

    def asDict(self):
        """The current items as a plain dict."""
        return {item: getattr(self, item) for item in self.__slots__}

    def parseAddressesString(self, addresses):
        """Split a comma separated address list; ``''`` stands for the empty string."""
        result = []
        for addr in addresses.split(","):
            addr = addr.strip()
            if addr == "''":
                addr = ""
            result.append(addr)
        return result

    def dump(self):
        """Human readable diagnostics, in Pyro4's layout."""
        config = self.asDict()
        config["LOGFILE"] = os.environ.get("PYRO_LOGFILE")
        config["LOGLEVEL"] = os.environ.get("PYRO_LOGLEVEL")
        lines = [f"Pyro version: {constants.VERSION}",
                 f"Loaded from: {os.path.dirname(__file__)}",
                 f"Python version: {platform.python_implementation()} {platform.python_version()} ({platform.system()}, {os.name})",
                 "Protocol version: %d" % constants.PROTOCOL_VERSION,  # noqa: UP031
                 "Currently active configuration settings:"]
        for name, value in sorted(config.items()):
            lines.append(f"{name} = {value}")
        return "\n".join(lines)

    def _native_items(self):
        """The items the Rust client reads, as (name, text) pairs for ``NativeProxy``."""
        items = []
        for name in ("NS_HOST", "NS_PORT", "NS_BCPORT", "COMPRESSION", "COMMTIMEOUT", "METADATA",
                     "MAX_MESSAGE_SIZE", "PREFER_IP_VERSION", "SERIALIZER", "MAX_RETRIES",
                     "BROADCAST_ADDRS"):
            value = getattr(self, name)
            if isinstance(value, bool):
                value = "true" if value else "false"
            items.append((name, str(value)))
        return items


config = Configuration()


def main():
    print(config.dump())


if __name__ == "__main__":
    main()
