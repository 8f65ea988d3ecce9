"""Pyro4's ``util``: remote tracebacks, and the class/dict registries of the serializers.

The serializers themselves are Rust; what lives here is what Pyro4 lets users change:
``register_class_to_dict`` / ``register_dict_to_class``, type replacements, and the
conversion hooks the Rust conversion calls for objects that are not plain builtins.
"""

import array
import builtins
import copyreg
import datetime
import decimal
import inspect
import io
import linecache
import logging
import pickle
import sys
import traceback
import uuid

from pyro_rs import errors, serpent
from pyro_rs.configuration import config

log = logging.getLogger("pyro_rs.util")

__all__ = [
    "SerializerBase",
    "excepthook",
    "formatTraceback",
    "getPyroTraceback",
    "get_serializer",
    "get_serializer_by_id",
]


def getPyroTraceback(ex_type=None, ex_value=None, ex_tb=None):
    """The traceback lines of an exception, with the remote traceback (``_pyroTraceback``)
    of a Pyro remote exception appended in Pyro4's frame."""

    def format_remote(remote_tb_lines):
        result = [" +--- This exception occured remotely (Pyro) - Remote traceback:"]
        for line in remote_tb_lines:
            line = line.removesuffix("\n")
            for line2 in line.split("\n"):
                result.append("\n | ")
                result.append(line2)
        result.append("\n +--- End of remote traceback\n")
        return result

    try:
        if ex_type is not None and ex_value is None and ex_tb is None and type(ex_type) is not type:
            raise TypeError("invalid argument: ex_type should be an exception type, "
                            "or just supply no arguments at all")
        if ex_type is None and ex_tb is None:
            ex_type, ex_value, ex_tb = sys.exc_info()
        remote_tb = getattr(ex_value, "_pyroTraceback", None)
        local_tb = formatTraceback(ex_type, ex_value, ex_tb, config.DETAILED_TRACEBACK)
        if remote_tb:
            return local_tb + format_remote(remote_tb)
        return local_tb
    finally:
        del ex_type, ex_value, ex_tb


def formatTraceback(ex_type=None, ex_value=None, ex_tb=None, detailed=False):
    """Format a traceback; ``detailed`` adds the local variables of each frame."""
    if ex_type is not None and ex_value is None and ex_tb is None and type(ex_type) is not type:
        raise TypeError("invalid argument: ex_type should be an exception type, "
                        "or just supply no arguments at all")
    if ex_type is None and ex_tb is None:
        ex_type, ex_value, ex_tb = sys.exc_info()
    if not detailed:
        return traceback.format_exception(ex_type, ex_value, ex_tb)

    def value_text(value):
        try:
            return repr(value)
        except Exception:  # noqa: BLE001
            try:
                return str(value)
            except Exception:  # noqa: BLE001
                return "<ERROR>"

    try:
        result = ["-" * 52 + "\n", f" EXCEPTION {ex_type}: {ex_value}\n",
                  " Extended stacktrace follows (most recent call last)\n"]
        skip_locals = True
        while ex_tb:
            frame = ex_tb.tb_frame
            filename = frame.f_code.co_filename
            if "self" in frame.f_locals:
                location = "{}.{}".format(frame.f_locals["self"].__class__.__name__, frame.f_code.co_name)
            else:
                location = frame.f_code.co_name
            result.append("-" * 52 + "\n")
            result.append("File \"%s\", line %d, in %s\n" % (filename, ex_tb.tb_lineno, location))  # noqa: UP031
            result.append("Source code:\n")
            result.append("    " + linecache.getline(filename, ex_tb.tb_lineno).strip() + "\n")
            if not skip_locals:
                names = set(frame.f_code.co_varnames) | set(frame.f_code.co_names)
                result.append("Local values:\n")
                for name in sorted(names):
                    if name in frame.f_locals:
                        value = frame.f_locals[name]
                        result.append(f"    {name} = {value_text(value)}\n")
            skip_locals = False
            ex_tb = ex_tb.tb_next
        result.append("-" * 52 + "\n")
        result.append(f" EXCEPTION {ex_type}: {ex_value}\n")
        result.append("-" * 52 + "\n")
        return result
    except Exception:  # noqa: BLE001
        return ["-" * 52 + "\nError building extended traceback!!! :\n",
                "".join(traceback.format_exception(*sys.exc_info())) + "-" * 52 + "\n",
                "Original Exception follows:\n",
                "".join(traceback.format_exception(ex_type, ex_value, ex_tb))]


def excepthook(ex_type, ex_value, ex_tb):
    """A ``sys.excepthook`` that prints remote Pyro tracebacks too."""
    sys.stderr.write("".join(getPyroTraceback(ex_type, ex_value, ex_tb)))


all_exceptions = {}
for _name, _t in vars(builtins).items():
    if type(_t) is type and issubclass(_t, BaseException):
        all_exceptions[_name] = _t
for _name, _t in vars(errors).items():
    if type(_t) is type and issubclass(_t, errors.PyroError):
        all_exceptions[_name] = _t


def _pyro_error_to_dict(exc):
    # pyro_rs errors travel under Pyro4's module name so Pyro4 peers rebuild their own.
    return {
        "__class__": "Pyro4.errors." + type(exc).__name__,
        "__exception__": True,
        "args": exc.args,
        "attributes": vars(exc),
    }


class SerializerBase:
    """The serializer registries and class conversions of Pyro4 (``SerializerBase``)."""
    _custom_class_to_dict_registry = {}  # noqa: RUF012
    _custom_dict_to_class_registry = {}  # noqa: RUF012
    serializer_id = 0
    name = "?"

    @classmethod
    def register_type_replacement(cls, object_type, replacement_function):
        raise NotImplementedError("implement in subclass")

    @classmethod
    def register_class_to_dict(cls, clazz, converter, serpent_too=True):
        """``converter(obj) -> dict`` for objects of ``clazz`` (and serpent too)."""
        SerializerBase._custom_class_to_dict_registry[clazz] = converter
        if serpent_too:
            def serpent_converter(obj, serializer, stream, level):
                serializer.ser_builtins_dict(converter(obj), stream, level)
            serpent.register_class(clazz, serpent_converter)

    @classmethod
    def unregister_class_to_dict(cls, clazz):
        SerializerBase._custom_class_to_dict_registry.pop(clazz, None)
        serpent.unregister_class(clazz)

    @classmethod
    def register_dict_to_class(cls, classname, converter):
        """``converter(classname, dict) -> object`` for dicts with that ``__class__``."""
        SerializerBase._custom_dict_to_class_registry[classname] = converter

    @classmethod
    def unregister_dict_to_class(cls, classname):
        SerializerBase._custom_dict_to_class_registry.pop(classname, None)

    @classmethod
    def class_to_dict(cls, obj):
        """A dict for an object the serializer cannot write itself (Pyro4's rules)."""
        for clazz, converter in SerializerBase._custom_class_to_dict_registry.items():
            if isinstance(obj, clazz):
                return converter(obj)
        if type(obj) in (set, dict, tuple, list):
            raise ValueError("can't serialize type " + str(obj.__class__) + " into a dict")
        if hasattr(obj, "_pyroDaemon"):
            obj._pyroDaemon = None
        if isinstance(obj, BaseException):
            return {
                "__class__": obj.__class__.__module__ + "." + obj.__class__.__name__,
                "__exception__": True,
                "args": obj.args,
                "attributes": vars(obj),
            }
        try:
            value = obj.__getstate__()
        except AttributeError:
            pass
        else:
            if isinstance(value, dict):
                return value
        try:
            value = dict(vars(obj))
            value["__class__"] = obj.__class__.__module__ + "." + obj.__class__.__name__
            return value
        except TypeError:
            if hasattr(obj, "__slots__"):
                value = {slot: getattr(obj, slot) for slot in obj.__slots__}
                value["__class__"] = obj.__class__.__module__ + "." + obj.__class__.__name__
                return value
            raise errors.SerializeError("don't know how to serialize class " + str(obj.__class__) +
                                        " using serializer " + str(cls.__name__) +
                                        ". Give it vars() or an appropriate __getstate__")

    @classmethod
    def dict_to_class(cls, data):
        """Rebuild an object from a class dict; only a fixed set of classes (Pyro4's rule)."""
        from pyro_rs import core, futures
        classname = data.get("__class__", "<unknown>")
        if isinstance(classname, bytes):
            classname = classname.decode("utf-8")
        if classname == "float" and "value" in data:
            return float(data["value"])  # serpent's NaN
        if classname in SerializerBase._custom_dict_to_class_registry:
            return SerializerBase._custom_dict_to_class_registry[classname](classname, data)
        if "__" in classname:
            raise errors.SecurityError(
                "refused to deserialize types with double underscores in their name: " + classname)
        for prefix in ("Pyro4.core.", "pyro_rs.core."):
            if classname.startswith(prefix):
                short = classname[len(prefix):]
                if short in ("URI", "Proxy") or (short == "Daemon" and hasattr(core, "Daemon")):
                    target = getattr(core, short)
                    obj = target.__new__(target)
                    obj.__setstate_from_dict__(data["state"])
                    return obj
        for prefix in ("Pyro4.errors.", "pyro_rs.errors."):
            if classname.startswith(prefix):
                errortype = getattr(errors, classname[len(prefix):], None)
                if isinstance(errortype, type) and issubclass(errortype, errors.PyroError):
                    return SerializerBase.make_exception(errortype, data)
        if classname in ("Pyro4.futures._ExceptionWrapper", "pyro_rs.futures._ExceptionWrapper"):
            ex = data["exception"]
            if isinstance(ex, dict) and "__class__" in ex:
                ex = SerializerBase.dict_to_class(ex)
            return futures._ExceptionWrapper(ex)
        if data.get("__exception__", False):
            if classname in all_exceptions:
                return SerializerBase.make_exception(all_exceptions[classname], data)
            namespace, _, short = classname.partition(".")
            if namespace in ("builtins", "exceptions"):
                exceptiontype = getattr(builtins, short, None)
                if isinstance(exceptiontype, type) and issubclass(exceptiontype, BaseException):
                    return SerializerBase.make_exception(exceptiontype, data)
            elif namespace == "sqlite3" and short.endswith("Error"):
                import sqlite3
                exceptiontype = getattr(sqlite3, short, None)
                if isinstance(exceptiontype, type) and issubclass(exceptiontype, BaseException):
                    return SerializerBase.make_exception(exceptiontype, data)
        log.warning("unsupported serialized class: " + classname)
        raise errors.SerializeError("unsupported serialized class: " + classname)

    @staticmethod
    def make_exception(exceptiontype, data):
        ex = exceptiontype(*data["args"])
        if "attributes" in data:
            for attr, value in data["attributes"].items():
                setattr(ex, attr, value)
        return ex

    def recreate_classes(self, literal):
        t = type(literal)
        if t is set:
            return {self.recreate_classes(x) for x in literal}
        if t is list:
            return [self.recreate_classes(x) for x in literal]
        if t is tuple:
            return tuple(self.recreate_classes(x) for x in literal)
        if t is dict:
            if "__class__" in literal:
                return self.dict_to_class(literal)
            return {k: self.recreate_classes(v) for k, v in literal.items()}
        return literal

    # ---- the hooks the Rust conversion calls --------------------------------------
    #: Builtin subclasses (namedtuple, defaultdict ...) count as their base type.
    subclass_as_base = True

    def replace(self, obj):
        """Replacement (made of builtins) for an object the Rust conversion does not know."""
        return self.class_to_dict(obj)

    def __eq__(self, other):
        return isinstance(other, SerializerBase) and vars(self) == vars(other)

    __hash__ = object.__hash__


class SerpentSerializer(SerializerBase):
    """serpent (id 1), the Rust codec. Unknown objects get exactly serpent's treatment
    (``dumps(obj, module_in_classname=True)``, registered classes included)."""
    serializer_id = 1
    name = "serpent"
    subclass_as_base = False

    def replace(self, obj):
        return serpent.loads(serpent.dumps(obj, module_in_classname=True))

    def dumps(self, data):
        return serpent.dumps(data, module_in_classname=True)

    def loads(self, data):
        return self.recreate_classes(serpent.loads(data))

    @classmethod
    def register_type_replacement(cls, object_type, replacement_function):
        def custom_serializer(obj, serpent_serializer, outputstream, indentlevel):
            replaced = replacement_function(obj)
            if replaced is obj:
                serpent_serializer.ser_default_class(replaced, outputstream, indentlevel)
            else:
                serpent_serializer._serialize(replaced, outputstream, indentlevel)
        if object_type is type or not inspect.isclass(object_type):
            raise ValueError("refusing to register replacement for a non-type or the type 'type' itself")
        serpent.register_class(object_type, custom_serializer)


class JsonSerializer(SerializerBase):
    """json (id 2), the Rust codec with Pyro4's ``default`` hook."""
    serializer_id = 2
    name = "json"
    _type_replacements = {}  # noqa: RUF012

    def replace(self, obj):
        replacer = self._type_replacements.get(type(obj), None)
        if replacer:
            obj = replacer(obj)
        if isinstance(obj, set):
            return tuple(obj)
        if isinstance(obj, uuid.UUID):
            return str(obj)
        if isinstance(obj, (datetime.datetime, datetime.date)):
            return obj.isoformat()
        if isinstance(obj, decimal.Decimal):
            return str(obj)
        if isinstance(obj, array.array):
            if obj.typecode == "u":
                return obj.tounicode()
            return obj.tolist()
        return self.class_to_dict(obj)

    @classmethod
    def register_type_replacement(cls, object_type, replacement_function):
        if object_type is type or not inspect.isclass(object_type):
            raise ValueError("refusing to register replacement for a non-type or the type 'type' itself")
        cls._type_replacements[object_type] = replacement_function


class MarshalSerializer(SerializerBase):
    """marshal (id 3), the Rust codec with Pyro4's marshallable conversion."""
    serializer_id = 3
    name = "marshal"

    def replace(self, obj):
        if isinstance(obj, array.array):
            if obj.typecode == "u":
                return obj.tounicode()
            return obj.tolist()
        return self.class_to_dict(obj)

    @classmethod
    def class_to_dict(cls, obj):
        if isinstance(obj, uuid.UUID):
            return str(obj)
        return super().class_to_dict(obj)

    @classmethod
    def register_type_replacement(cls, object_type, replacement_function):
        pass  # marshal has no per-type hooks, as in Pyro4


class _PickleFallback(Exception):
    """The fast (C) pickler met a pyro_rs class that must be written under its Pyro4 name."""


_pyro4_names = None
_pyro_rs_classes = None


def _class_maps():
    """``{pyro_rs class: (Pyro4 module, name)}`` and its inverse, built on first use
    (core imports this module)."""
    global _pyro4_names, _pyro_rs_classes
    if _pyro4_names is None:
        from pyro_rs import core, futures
        names = {cls: ("Pyro4.core", cls.__name__) for cls in (core.URI, core.Proxy, core.Daemon)}
        names[futures._ExceptionWrapper] = ("Pyro4.futures", "_ExceptionWrapper")
        for name in errors.__all__:
            names[getattr(errors, name)] = ("Pyro4.errors", name)
        _pyro_rs_classes = {target: cls for cls, target in names.items()}
        _pyro4_names = names
    return _pyro4_names, _pyro_rs_classes


def _autoproxy_reduction(obj):
    """A registered Pyro object is pickled as a proxy for it when AUTOPROXY is on (Pyro4's
    ``pyro_obj_to_auto_proxy``, which Pyro4 installs with copyreg on ``register``)."""
    if not config.AUTOPROXY or isinstance(obj, type):
        return NotImplemented
    from pyro_rs import core
    if isinstance(obj, (core.Proxy, core.URI, core.Daemon)):
        return NotImplemented
    try:
        daemon = getattr(obj, "_pyroDaemon", None)
    except Exception:  # noqa: BLE001 - odd __getattr__: not a Pyro object
        return NotImplemented
    if isinstance(daemon, core.Daemon) and getattr(obj, "_pyroId", None):
        # Not the proxy's own __newobj__ reduction: pickle refuses one whose class is not
        # the replaced object's. Proxy(uri) then __setstate__ builds the same proxy.
        proxy = daemon.proxyFor(obj)
        return type(proxy), (proxy._pyroUri,), proxy.__getstate__()
    return NotImplemented


class _FastPickler(pickle.Pickler):
    """The C pickler; gives up (``_PickleFallback``) when a pyro_rs class must be renamed,
    which the C pickler cannot do (it checks every class name by importing it)."""

    def reducer_override(self, obj):
        if isinstance(obj, type):
            if obj in _class_maps()[0]:
                raise _PickleFallback
            return NotImplemented
        return _autoproxy_reduction(obj)


class _Pyro4NamesPickler(pickle._Pickler):
    """The pure-Python pickler writing pyro_rs classes under their Pyro4 names
    (``Pyro4.core.URI``, ``Pyro4.errors.NamingError``, ...), so a Pyro4 peer rebuilds its
    own classes without pyro_rs being installed there."""

    def reducer_override(self, obj):
        return _autoproxy_reduction(obj)

    def save_global(self, obj, name=None):
        target = _class_maps()[0].get(obj) if isinstance(obj, type) else None
        if target is None:
            return super().save_global(obj, name)
        module, qualname = target
        if self.proto >= 4:
            self.save(module)
            self.save(qualname)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"{module}\n{qualname}\n".encode())
        self.memoize(obj)
        return None


class _Pyro4NamesUnpickler(pickle.Unpickler):
    """Rebuilds Pyro4's URI, Proxy, Daemon, errors and batch exception wrapper as the
    pyro_rs classes; every other class loads as plain pickle does (as in Pyro4)."""

    def find_class(self, module, name):
        if module.startswith("Pyro4."):
            cls = _class_maps()[1].get((module, name))
            if cls is not None:
                return cls
        return super().find_class(module, name)


class PickleSerializer(SerializerBase):
    """pickle (id 4): Python's own pickle, as Pyro4's ``PickleSerializer``. Only the
    proxy uses it (raw payloads through the Rust client); the handshake and metadata go
    through the Rust pickle codec with the base class hooks."""
    serializer_id = 4
    name = "pickle"

    def dumps(self, data):
        protocol = config.PICKLE_PROTOCOL_VERSION
        out = io.BytesIO()
        try:
            _FastPickler(out, protocol).dump(data)
        except _PickleFallback:
            out = io.BytesIO()
            _Pyro4NamesPickler(out, protocol).dump(data)
        return out.getvalue()

    def loads(self, data):
        return _Pyro4NamesUnpickler(io.BytesIO(data)).load()

    @classmethod
    def register_type_replacement(cls, object_type, replacement_function):
        def copyreg_function(obj):
            return replacement_function(obj).__reduce__()
        if object_type is type or not inspect.isclass(object_type):
            raise ValueError("refusing to register replacement for a non-type or the type 'type' itself")
        try:
            copyreg.pickle(object_type, copyreg_function)
        except TypeError:
            pass


# Not in _serializers: the daemon's pickle is the Rust codec, and the per-serializer hooks
# there (autoproxy, class dicts) stay as they are.
_pickle_serializer = PickleSerializer()
_serializers = {}
_serializers_by_id = {}
for _ser in (SerpentSerializer(), JsonSerializer(), MarshalSerializer()):
    _serializers[_ser.name] = _ser
    _serializers_by_id[_ser.serializer_id] = _ser
del _ser


def get_serializer(name):
    if name == _pickle_serializer.name:
        return _pickle_serializer
    try:
        return _serializers[name]
    except KeyError:
        raise errors.SerializeError(f"serializer '{name}' is unknown or not available")


def get_serializer_by_id(sid):
    try:
        return _serializers_by_id[sid]
    except KeyError:
        raise errors.SerializeError("no serializer available for id %d" % sid)  # noqa: UP031


# pyro_rs errors cross the wire as Pyro4.errors.X, in every serializer.
SerializerBase.register_class_to_dict(errors.PyroError, _pyro_error_to_dict, serpent_too=True)


_private_dunder_methods = frozenset([
    "__init__", "__init_subclass__", "__class__", "__module__", "__weakref__",
    "__call__", "__new__", "__del__", "__repr__", "__unicode__",
    "__str__", "__format__", "__nonzero__", "__bool__", "__coerce__",
    "__cmp__", "__eq__", "__ne__", "__hash__", "__ge__", "__gt__", "__le__", "__lt__",
    "__dir__", "__enter__", "__exit__", "__copy__", "__deepcopy__", "__sizeof__",
    "__getattr__", "__setattr__", "__hasattr__", "__getattribute__", "__delattr__",
    "__instancecheck__", "__subclasscheck__", "__getinitargs__", "__getnewargs__",
    "__getstate__", "__setstate__", "__reduce__", "__reduce_ex__",
    "__getstate_for_dict__", "__setstate_from_dict__", "__subclasshook__",
])


def is_private_attribute(attr_name):
    """Pyro4's rule: a fixed set of dunder names, and every other name starting with an
    underscore unless it is a dunder name longer than 4 characters."""
    if attr_name in _private_dunder_methods:
        return True
    if not attr_name.startswith("_"):
        return False
    return not (len(attr_name) > 4 and attr_name.startswith("__") and attr_name.endswith("__"))


def getAttribute(obj, attr):
    """Resolve a remotely called name on an object (Pyro4's rules): private names are
    refused, and with REQUIRE_EXPOSE only @expose'd members are returned."""
    if is_private_attribute(attr):
        raise AttributeError(f"attempt to access private attribute '{attr}'")
    obj = getattr(obj, attr)
    if not config.REQUIRE_EXPOSE or getattr(obj, "_pyroExposed", False):
        return obj
    raise AttributeError(f"attempt to access unexposed attribute '{attr}'")


_exposed_member_cache = {}


def reset_exposed_members(obj, only_exposed=True, as_lists=False):
    """Forget the cached exposed members of the object's class."""
    if not inspect.isclass(obj):
        obj = obj.__class__
    _exposed_member_cache.pop((obj, only_exposed, as_lists), None)


def get_exposed_members(obj, only_exposed=True, as_lists=False, use_cache=True):
    """The exposed methods, oneway methods and properties of an object's class (Pyro4's
    metadata): private names never; with ``only_exposed`` only @expose'd members."""
    if not inspect.isclass(obj):
        obj = obj.__class__
    cache_key = (obj, only_exposed, as_lists)
    if use_cache and cache_key in _exposed_member_cache:
        return _exposed_member_cache[cache_key]
    methods = set()
    oneway = set()
    attrs = set()
    for m in dir(obj):
        if is_private_attribute(m):
            continue
        v = getattr(obj, m)
        if inspect.ismethod(v) or inspect.isfunction(v) or inspect.ismethoddescriptor(v):
            if getattr(v, "_pyroExposed", not only_exposed):
                methods.add(m)
                if getattr(v, "_pyroOneway", False):
                    oneway.add(m)
        elif inspect.isdatadescriptor(v):
            func = getattr(v, "fget", None) or getattr(v, "fset", None) or getattr(v, "fdel", None)
            if func is not None and getattr(func, "_pyroExposed", not only_exposed):
                attrs.add(m)
        # Plain class attributes are never exposed: a @property is the way to do that.
    if as_lists:
        methods, oneway, attrs = list(methods), list(oneway), list(attrs)
    result = {"methods": methods, "oneway": oneway, "attrs": attrs}
    _exposed_member_cache[cache_key] = result
    return result


def get_exposed_property_value(obj, propname, only_exposed=True):
    """The value of an exposed @property; anything else is an AttributeError."""
    v = getattr(obj.__class__, propname)
    if inspect.isdatadescriptor(v) and v.fget and getattr(v.fget, "_pyroExposed", not only_exposed):
        return v.fget(obj)
    raise AttributeError(f"attempt to access unexposed or unknown remote attribute '{propname}'")


def set_exposed_property_value(obj, propname, value, only_exposed=True):
    """Set an exposed @property; anything else is an AttributeError."""
    v = getattr(obj.__class__, propname)
    if inspect.isdatadescriptor(v):
        pfunc = v.fget or v.fset or v.fdel
        if v.fset and getattr(pfunc, "_pyroExposed", not only_exposed):
            return v.fset(obj, value)
    raise AttributeError(f"attempt to access unexposed or unknown remote attribute '{propname}'")
