"""serpent 1.43's module API on the Rust codec.

``dumps`` walks Python objects in Rust for the builtin types and follows serpent's
dispatch order here for the rest (registered classes in registration order, then the
type dispatch table, the MRO walk and the default class rule), so the output is
byte-identical to serpent 1.43. ``loads`` parses in Rust straight into Python objects; what
the Rust parser refuses is handed to ``ast.literal_eval`` exactly as serpent does, so
errors and rare literal forms (lone surrogates, ``\\N{...}``, ``...``) behave the same.
"""

import array
import ast
import base64
import codecs
import collections
import datetime
import decimal
import enum
import math
import numbers
import sys
import uuid
from collections.abc import ItemsView, KeysView, ValuesView

from pyro_rs import _native

__version__ = "1.43"
__all__ = ["dump", "dumps", "load", "loads", "register_class", "tobytes", "unregister_class"]

_HEADER = "# serpent utf-8 python3.2\n"


# ``dumps(obj, indent=False, module_in_classname=False, bytes_repr=False)``: serialize an
# object tree to bytes. It is the native function itself, so a call has no Python frame on
# the way to the Rust writer: a compact-mode tree of exact builtin types is written in one
# Rust call (the same bytes the Serializer writes); anything else is handed to
# ``_dumps_full``.
dumps = _native.serpent_dumps_builtin


def _dumps_full(obj, indent, module_in_classname, bytes_repr):
    # The full Serializer: serpent's dispatch order, indent mode, and serpent's errors.
    return Serializer(indent, module_in_classname, bytes_repr).serialize(obj)


def dump(obj, file, indent=False, module_in_classname=False, bytes_repr=False):
    """Serialize an object tree to a (binary) file."""
    file.write(dumps(obj, indent=indent, module_in_classname=module_in_classname, bytes_repr=bytes_repr))


def _literal_eval_loads(serialized_bytes):
    # serpent's own algorithm: decode strictly, refuse NUL, ast.literal_eval.
    serialized = codecs.decode(serialized_bytes, "utf-8")
    if "\x00" in serialized:
        raise ValueError(
            "The serpent data contains 0-bytes so it cannot be parsed by ast.literal_eval. "
            "Has it been corrupted?")
    return ast.literal_eval(serialized)


def loads(serialized_bytes):
    """Deserialize bytes (bytes, bytearray, memoryview) back to an object tree."""
    if isinstance(serialized_bytes, (bytes, bytearray, memoryview)):
        try:
            return _native.serpent_parse(bytes(serialized_bytes))
        except _native.SerpentParseError:
            pass
    return _literal_eval_loads(serialized_bytes)


def load(file):
    """Deserialize from a file."""
    return loads(file.read())


def _ser_OrderedDict(obj, serializer, outputstream, indentlevel):
    outputstream.enter(obj, "OrderedDict")
    value = {
        "__class__": "collections.OrderedDict" if serializer.module_in_classname else "OrderedDict",
        "items": list(obj.items()),
    }
    serializer._serialize(value, outputstream, indentlevel)
    # serpent 1.43 forgets the OrderedDict's id here (it discards the temporary dict's),
    # so the same OrderedDict twice in one call is reported as circular. Kept for
    # byte- and error-identical behaviour.
    outputstream.leave(value)


def _ser_DictView(obj, serializer, outputstream, indentlevel):
    serializer.ser_builtins_list(obj, outputstream, indentlevel)


def _ser_Enum(obj, serializer, outputstream, indentlevel):
    serializer._serialize(obj.value, outputstream, indentlevel)


# Ordered: isinstance checks run in registration order.
_special_classes_registry = collections.OrderedDict()


def _reset_special_classes_registry():
    _special_classes_registry.clear()
    _special_classes_registry[KeysView] = _ser_DictView
    _special_classes_registry[ValuesView] = _ser_DictView
    _special_classes_registry[ItemsView] = _ser_DictView
    _special_classes_registry[collections.OrderedDict] = _ser_OrderedDict
    _special_classes_registry[enum.Enum] = _ser_Enum


_reset_special_classes_registry()


def unregister_class(clazz):
    """Remove the special serializer of a class."""
    if clazz in _special_classes_registry:
        del _special_classes_registry[clazz]


def register_class(clazz, serializer):
    """Register ``serializer(obj, serpent_serializer, outputstream, indentlevel)`` for a class;
    it writes through ``serpent_serializer._serialize`` or ``ser_builtins_dict``."""
    _special_classes_registry[clazz] = serializer


_translate_types = {
    collections.deque: list,
    collections.UserDict: dict,
    collections.UserList: list,
    collections.UserString: str,
}

_bytes_types = (bytes, bytearray, memoryview)


def tobytes(obj):
    """Bytes back from a serpent base64 bytes dict; bytes-like objects pass unchanged."""
    if isinstance(obj, _bytes_types):
        return obj
    if isinstance(obj, dict) and "data" in obj and obj.get("encoding") == "base64":
        try:
            return base64.b64decode(obj["data"])
        except TypeError:
            return base64.b64decode(obj["data"].encode("ascii"))
    raise TypeError("argument is neither bytes nor serpent base64 encoded bytes dict")


class Serializer:
    """Serializes an object tree to bytes (not thread-safe, as serpent's)."""
    dispatch = {}  # noqa: RUF012

    def __init__(self, indent=False, module_in_classname=False, bytes_repr=False):
        self.indent = indent
        self.module_in_classname = module_in_classname
        self.special_classes_registry_copy = None
        self.maximum_level = min(sys.getrecursionlimit() // 5, 1000)
        self.bytes_repr = bytes_repr

    def serialize(self, obj):
        """Serialize the object tree to bytes."""
        self.special_classes_registry_copy = _special_classes_registry.copy()
        out = _native.SerpentOutput()
        out.append(_HEADER)
        try:
            self._serialize(obj, out, 0)
        finally:
            self.special_classes_registry_copy = None
        return out.getvalue()

    def _serialize(self, obj, out, level):
        _native.serpent_serialize(self, obj, out, level)

    def _serialize_other(self, obj, out, level):
        # serpent's dispatch for everything the Rust walker does not take itself.
        t = type(obj)
        if t in _translate_types:
            return self._serialize(_translate_types[t](obj), out, level)
        special = self.special_classes_registry_copy
        if special is None:
            special = _special_classes_registry
        for clazz in special:
            if isinstance(obj, clazz):
                special[clazz](obj, self, out, level)
                return
        func = self.dispatch.get(t)
        if func is None:
            for type_ in t.__mro__:
                if type_ in self.dispatch:
                    func = self.dispatch[type_]
                    break
            else:
                func = Serializer.ser_default_class
        func(self, obj, out, level)

    def ser_builtins_float(self, float_obj, out, level):
        out.append(_native.serpent_float(float(float_obj)))

    dispatch[float] = ser_builtins_float

    def ser_builtins_complex(self, complex_obj, out, level):
        real, imag = complex_obj.real, complex_obj.imag
        if math.isnan(real) or math.isnan(imag):
            out.append("{'__class__':'complex','real':")
            self.ser_builtins_float(real, out, level)
            out.append(",'imag':")
            self.ser_builtins_float(imag, out, level)
            out.append("}")
            return
        out.append("(")
        self.ser_builtins_float(real, out, level)
        if imag >= 0 and math.copysign(1.0, imag) > 0:
            out.append("+")
        self.ser_builtins_float(imag, out, level)
        out.append("j)")

    dispatch[complex] = ser_builtins_complex

    def ser_builtins_tuple(self, tuple_obj, out, level):
        _native.serpent_container(self, tuple_obj, out, level, "tuple")

    dispatch[tuple] = ser_builtins_tuple

    def ser_builtins_list(self, list_obj, out, level):
        _native.serpent_container(self, list_obj, out, level, "list")

    dispatch[list] = ser_builtins_list

    def _check_hashable_type(self, t):
        if t not in (bool, bytes, str, tuple) and not issubclass(t, numbers.Number):
            if issubclass(t, enum.Enum):
                return
            raise TypeError("one of the keys in a dict or set is not of a primitive hashable type: " +
                            str(t) + ". Use simple types as keys or use a list or tuple as container.")

    def ser_builtins_dict(self, dict_obj, out, level):
        _native.serpent_container(self, dict_obj, out, level, "dict")

    dispatch[dict] = ser_builtins_dict

    def ser_builtins_set(self, set_obj, out, level):
        _native.serpent_container(self, set_obj, out, level, "set")

    dispatch[set] = ser_builtins_set
    dispatch[frozenset] = ser_builtins_set

    def ser_builtins_frozenset(self, set_obj, out, level):
        self.ser_builtins_set(set_obj, out, level)

    def ser_decimal_Decimal(self, decimal_obj, out, level):
        out.append(repr(str(decimal_obj)))

    dispatch[decimal.Decimal] = ser_decimal_Decimal

    def ser_datetime_datetime(self, datetime_obj, out, level):
        out.append(repr(datetime_obj.isoformat()))

    dispatch[datetime.datetime] = ser_datetime_datetime

    def ser_datetime_date(self, date_obj, out, level):
        out.append(repr(date_obj.isoformat()))

    dispatch[datetime.date] = ser_datetime_date

    def ser_datetime_timedelta(self, timedelta_obj, out, level):
        out.append(repr(timedelta_obj.total_seconds()))

    dispatch[datetime.timedelta] = ser_datetime_timedelta

    def ser_datetime_time(self, time_obj, out, level):
        out.append(repr(str(time_obj)))

    dispatch[datetime.time] = ser_datetime_time

    def ser_uuid_UUID(self, uuid_obj, out, level):
        out.append(repr(str(uuid_obj)))

    dispatch[uuid.UUID] = ser_uuid_UUID

    def ser_exception_class(self, exc_obj, out, level):
        value = {
            "__class__": self.get_class_name(exc_obj),
            "__exception__": True,
            "args": exc_obj.args,
            "attributes": vars(exc_obj),
        }
        self._serialize(value, out, level)

    dispatch[BaseException] = ser_exception_class

    def ser_array_array(self, array_obj, out, level):
        if array_obj.typecode == "u":
            self._serialize(array_obj.tounicode(), out, level)
        else:
            self._serialize(array_obj.tolist(), out, level)

    dispatch[array.array] = ser_array_array

    def ser_default_class(self, obj, out, level):
        out.enter(obj, "class")
        try:
            # Python 3.11 gave object a __getstate__; only an override counts.
            has_own_getstate = (
                hasattr(type(obj), "__getstate__")
                and type(obj).__getstate__ is not getattr(object, "__getstate__", None)
            )
            if has_own_getstate:
                value = obj.__getstate__()
                if isinstance(value, dict):
                    if "__class__" not in value:
                        value = value.copy()
                        value["__class__"] = self.get_class_name(obj)
                    self.ser_builtins_dict(value, out, level)
                    return
            else:
                try:
                    value = dict(vars(obj))
                    value["__class__"] = self.get_class_name(obj)
                except TypeError:
                    if hasattr(obj, "__slots__"):
                        value = {}
                        for slot in obj.__slots__:
                            value[slot] = getattr(obj, slot)
                        value["__class__"] = self.get_class_name(obj)
                    else:
                        raise TypeError("don't know how to serialize class " + str(obj.__class__) +
                                        ". Give it vars() or an appropriate __getstate__")
            self._serialize(value, out, level)
        finally:
            out.leave(obj)

    def get_class_name(self, obj):
        if self.module_in_classname:
            return f"{obj.__class__.__module__}.{obj.__class__.__name__}"
        return obj.__class__.__name__
