"""The Kubernetes CEL quantity library (k8s.io/apiserver/pkg/cel/library/quantity.go, Kubernetes
1.29+) for the cel-expr-python environment: ``quantity(string)``, ``isQuantity(string)``,
``sign(Quantity)`` and the Quantity member functions isInteger, asInteger, asApproximateFloat, add,
sub, isGreaterThan, isLessThan and compareTo.

A Quantity is a protobuf message of type ``kubernetes.Quantity`` (the name of the API server's CEL
type), so the engine type-checks calls on it: ``quantity('1').compareTo(1)`` does not compile, as on
the API server. The message holds the value as resource.Quantity (k8s.io/apimachinery) holds it,
because some results depend on that form, not only on the number: an int64 mantissa and a base-10
exponent, or an arbitrary-precision decimal (inf.Dec) when parsing or arithmetic took the slow path.
So ``quantity('4').isInteger()`` is true but ``quantity('4.0').isInteger()`` and
``quantity('1000m').isInteger()`` are false (AsInt64 refuses a negative exponent), as on the API
server; compareTo, isLessThan, isGreaterThan and sign depend on the number only.

Differences from the API server, each an error here rather than a different answer:

- ``==``, ``!=``, ``in`` and indexOf/lastIndexOf on Quantity values would compare the messages
  (the stored form), while the API server compares numbers; expressions doing so are refused at
  compile time (see compares_quantities). Use compareTo.
- The grammar is that of policies/rules/values.py (sign, digits with an optional fraction, one
  suffix or a decimal exponent, no whitespace). resource.ParseQuantity also accepts a few
  degenerate strings without digits ("+", "-", ".", a lone "Mi"), as zero; here they are invalid.
- Exact arithmetic that would write out more than _MAX_DIGITS digits (e.g. adding 1 to 1e1000000,
  or parsing 20 digits followed by e1000000) is refused instead of run (Go would run it).
"""

from __future__ import annotations

import dataclasses
import decimal
import functools
import math
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from cel_expr_python import cel
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

QUANTITY_TYPE_NAME = "kubernetes.Quantity"

# A number with an optional fraction, then a decimal exponent or one suffix (values.py's grammar).
_GRAMMAR = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:[eE](?P<exponent>[+-]?[0-9]+)|(?P<suffix>[KMGTPE]i|[numkMGTPE]))?"
)
_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_INT32_MAX = 2**31 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_NANO = Decimal("1e-9")
# Exact arithmetic on exponents this far apart writes out that many digits (in Go too); refused.
_MAX_DIGITS = 10_000
# Exact decimal arithmetic (inf.Dec is unbounded): no rounding, any exponent a Quantity can have.
_EXACT = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)


@dataclasses.dataclass(frozen=True)
class Quantity:
    """A resource.Quantity as Go holds it. ``amount`` is the number with Go's digits and exponent:
    int64Amount{value, scale} is ``value * 10**scale`` with that exponent; with ``inf_dec`` it is
    the inf.Dec (unscaled digits, exponent = -scale)."""

    amount: Decimal
    inf_dec: bool = False


def _fits_int64(value: int) -> bool:
    return _INT64_MIN <= value <= _INT64_MAX


def _int64_amount(value: int, scale: int) -> Quantity:
    return Quantity(Decimal(value).scaleb(scale, _EXACT))


def _unscaled(amount: Decimal) -> tuple[int, int]:
    """The mantissa and base-10 exponent of a finite decimal, as stored."""
    sign, digits, exponent = amount.as_tuple()
    if not isinstance(exponent, int):
        raise ValueError(f"not a finite quantity: {amount}")
    value = int("".join(map(str, digits)) or "0")
    return (-value if sign else value), exponent


def parse_quantity(text: str) -> Quantity:
    """resource.ParseQuantity: ValueError if ``text`` is not a quantity. Values finer than 1n are
    rounded up to it (away from zero) and binary-suffixed values capped at 2^63-1, as Go does."""
    match = _GRAMMAR.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a Kubernetes quantity (e.g. 16Gi, 500m, 1)")
    number, exponent_text, suffix = match.group("number", "exponent", "suffix")
    binary = suffix in _BINARY_SUFFIXES
    if exponent_text is not None:
        exponent = int(exponent_text)
        if abs(exponent) > _INT32_MAX:  # Go stores the exponent in an int32
            raise ValueError(f"{text!r}: the exponent is out of range")
    else:
        exponent = _BINARY_SUFFIXES[suffix] if binary else _DECIMAL_SUFFIXES[suffix or ""]
    negative = number.startswith("-")
    whole, _, fraction = number.lstrip("+-").partition(".")
    whole = whole.lstrip("0") or "0"
    # The fast path: a mantissa and an exponent that fit an int64Amount.
    if binary:
        precision = 15 - len(whole) - exponent * 3 // 10 - 1 if not fraction else -1
        scale, factor = 0, 2**exponent
    else:
        precision, scale, factor = 18 - len(whole) - len(fraction), exponent, 1
    scale -= len(fraction)
    if precision >= 0 and scale >= -9:
        value = int(whole + fraction) * factor
        if _fits_int64(value):
            return _int64_amount(-value if negative else value, scale)
    # The slow path: an inf.Dec, rounded up to 1n (away from zero) and, for 2^n suffixes, capped.
    amount = Decimal(number)
    amount = _EXACT.multiply(amount, Decimal(2**exponent)) if binary else amount.scaleb(exponent, _EXACT)
    magnitude = amount.copy_abs()
    if magnitude.adjusted() > _MAX_DIGITS:
        raise ValueError(f"{text!r} is too large to evaluate offline")
    if magnitude:
        magnitude = magnitude.quantize(_NANO, rounding=decimal.ROUND_UP, context=_EXACT)
    if binary and magnitude > _INT64_MAX:
        magnitude = Decimal(_INT64_MAX)
    return Quantity(magnitude.copy_negate() if amount < 0 else magnitude, inf_dec=True)


def is_quantity(text: str) -> bool:
    try:
        parse_quantity(text)
    except ValueError:
        return False
    return True


def as_int64(quantity: Quantity) -> int | None:
    """Quantity.AsInt64: the value if it is an int64Amount with an exponent >= 0 that fits."""
    if quantity.inf_dec:
        return None
    value, scale = _unscaled(quantity.amount)
    if scale < 0:
        return None
    if value == 0:
        return 0
    if scale > 18:  # |value| * 10^19 does not fit
        return None
    value *= 10**scale
    return value if _fits_int64(value) else None


def as_approximate_float(quantity: Quantity) -> float:
    """Quantity.AsApproximateFloat64: float(mantissa) * math.Pow10(exponent), as Go computes it."""
    value, exponent = _unscaled(quantity.amount)
    try:
        base = float(value)
    except OverflowError:
        base = math.copysign(math.inf, value)
    return base if exponent == 0 else base * _go_pow10(exponent)


_POW10 = tuple(float(f"1e{n}") for n in range(32))
_POW10_POS32 = tuple(float(f"1e{32 * n}") for n in range(10))
_POW10_NEG32 = tuple(float(f"1e-{32 * n}") for n in range(11))


def _go_pow10(n: int) -> float:
    """Go's math.Pow10 (its tables and its rounding)."""
    if 0 <= n <= 308:
        return _POW10_POS32[n // 32] * _POW10[n % 32]
    if -323 <= n <= 0:
        return _POW10_NEG32[-n // 32] / _POW10[-n % 32]
    return math.inf if n > 0 else 0.0


def _add_int64(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int] | None:
    """int64Amount.Add: the sum at the smaller exponent, None if a step overflows an int64."""
    (a_value, a_scale), (b_value, b_scale) = a, b
    if b_value == 0:
        return a
    if a_value == 0:
        return b
    if a_scale != b_scale:
        high, low = (a, b) if a_scale > b_scale else (b, a)
        shift = high[1] - low[1]
        if shift > 18:
            return None
        shifted = high[0] * 10**shift
        if not _fits_int64(shifted):
            return None
        a_value, b_value = shifted, low[0]
    total = a_value + b_value
    return (total, min(a_scale, b_scale)) if _fits_int64(total) else None


def add(a: Quantity, b: Quantity, negate_b: bool = False) -> Quantity:
    """Quantity.Add (Quantity.Sub with ``negate_b``): int64 arithmetic while it fits, else inf.Dec."""
    if not a.inf_dec and not b.inf_dec:
        b_value, b_scale = _unscaled(b.amount)
        b_value = -b_value if negate_b else b_value
        if _fits_int64(b_value) and (total := _add_int64(_unscaled(a.amount), (b_value, b_scale))) is not None:
            return _int64_amount(*total)
    if abs(_unscaled(a.amount)[1] - _unscaled(b.amount)[1]) > _MAX_DIGITS:
        raise ValueError("quantities too far apart to add or subtract offline")
    operation = _EXACT.subtract if negate_b else _EXACT.add
    return Quantity(operation(a.amount, b.amount), inf_dec=True)


def compare(a: Quantity, b: Quantity) -> int:
    return (a.amount > b.amount) - (a.amount < b.amount)


# ------------------------------------------------------------------------ the CEL type


@functools.cache
def descriptor_pool_with_quantity() -> descriptor_pool.DescriptorPool:
    """A descriptor pool with the message that stands for a Quantity in the engine."""
    field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="tests/validation/kubernetes_quantity.proto", syntax="proto3")
    file.package, _, name = QUANTITY_TYPE_NAME.rpartition(".")
    message = file.message_type.add(name=name)
    message.field.add(name="amount", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    message.field.add(name="inf_dec", number=2, type=field.TYPE_BOOL, label=field.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return pool


@functools.cache
def _message_class() -> type[Message]:
    descriptor = descriptor_pool_with_quantity().FindMessageTypeByName(QUANTITY_TYPE_NAME)
    message_class: type[Message] = message_factory.GetMessageClass(descriptor)
    return message_class


def _to_message(quantity: Quantity) -> Message:
    return _message_class()(amount=str(quantity.amount), inf_dec=quantity.inf_dec)


def _from_message(message: Message) -> Quantity:
    try:
        amount = Decimal(getattr(message, "amount"))  # noqa: B009 (a field of a dynamic message)
    except decimal.InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite():
        raise ValueError(f"not a quantity: {message}")
    return Quantity(amount, bool(getattr(message, "inf_dec")))  # noqa: B009


def is_quantity_message(value: Any) -> bool:
    return isinstance(value, Message) and value.DESCRIPTOR.full_name == QUANTITY_TYPE_NAME


def _sign(quantity: Quantity) -> int:
    return (quantity.amount > 0) - (quantity.amount < 0)


def _as_integer(quantity: Quantity) -> int:
    value = as_int64(quantity)
    if value is None:
        raise ValueError("cannot convert value to integer")  # the API server's message
    return value


# (function, overload id, parameters, result, implementation on Quantity/str/int values); "Q" is
# the Quantity type. Everything but quantity, isQuantity and sign is a member function.
_GLOBAL_FUNCTIONS = frozenset({"quantity", "isQuantity", "sign"})
_OVERLOADS: tuple[tuple[str, str, tuple[str, ...], str, Any], ...] = (
    ("quantity", "string_to_quantity", ("string",), "Q", parse_quantity),
    ("isQuantity", "is_quantity_string", ("string",), "bool", is_quantity),
    # sign is a global function on the API server (cel.Overload, not MemberOverload): q.sign() does not compile
    ("sign", "quantity_sign", ("Q",), "int", _sign),
    ("isGreaterThan", "quantity_is_greater_than", ("Q", "Q"), "bool", lambda a, b: compare(a, b) == 1),
    ("isLessThan", "quantity_is_less_than", ("Q", "Q"), "bool", lambda a, b: compare(a, b) == -1),
    ("compareTo", "quantity_compare_to", ("Q", "Q"), "int", compare),
    ("asApproximateFloat", "quantity_get_float", ("Q",), "double", as_approximate_float),
    ("asInteger", "quantity_get_int", ("Q",), "int", _as_integer),
    ("isInteger", "quantity_is_integer", ("Q",), "bool", lambda q: as_int64(q) is not None),
    ("add", "quantity_add", ("Q", "Q"), "Q", add),
    ("add", "quantity_add_int", ("Q", "int"), "Q", lambda q, n: add(q, _int64_amount(n, 0))),  # NewQuantity(n)
    ("sub", "quantity_sub", ("Q", "Q"), "Q", lambda a, b: add(a, b, negate_b=True)),
    ("sub", "quantity_sub_int", ("Q", "int"), "Q", lambda q, n: add(q, _int64_amount(n, 0), negate_b=True)),
)


def _cel_impl(function: Any, parameters: tuple[str, ...], result: str) -> Any:
    """The implementation on the engine's values: Quantity messages in and out."""

    def impl(*args: Any) -> Any:
        values = [_from_message(arg) if kind == "Q" else arg for arg, kind in zip(args, parameters, strict=True)]
        value = function(*values)
        return _to_message(value) if result == "Q" else value

    return impl


def quantity_functions() -> list[Any]:
    """The library's function declarations, with their implementations, for a cel.CelExtension
    (the environment needs descriptor_pool_with_quantity)."""
    types = {
        "Q": cel.Type(QUANTITY_TYPE_NAME),
        "string": cel.Type.STRING,
        "bool": cel.Type.BOOL,
        "int": cel.Type.INT,
        "double": cel.Type.DOUBLE,
    }
    overloads: dict[str, list[Any]] = {}
    for name, overload_id, parameters, result, function in _OVERLOADS:
        overloads.setdefault(name, []).append(
            cel.Overload(
                overload_id,
                return_type=types[result],
                parameters=[types[parameter] for parameter in parameters],
                is_member=name not in _GLOBAL_FUNCTIONS,
                impl=_cel_impl(function, parameters, result),
            )
        )
    return [cel.FunctionDecl(name, declared) for name, declared in overloads.items()]


# ------------------------------------------------------------- equality on Quantity values

# Functions that compare operands with CEL equality (the API server: Quantity.Equal, by number).
_EQUALITY_FUNCTIONS = frozenset({"_==_", "_!=_", "@in", "indexOf", "lastIndexOf"})


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, position


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """The (field number, varint or bytes) pairs of a protobuf message."""
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        wire_type = key & 7
        value: int | bytes
        if wire_type == 0:
            value, position = _varint(data, position)
        elif wire_type == 2:
            length, position = _varint(data, position)
            value, position = data[position : position + length], position + length
        elif wire_type in (1, 5):
            width = 8 if wire_type == 1 else 4
            value, position = data[position : position + width], position + width
        else:
            raise ValueError(f"unexpected protobuf wire type {wire_type}")
        yield key >> 3, value


def _submessages(data: bytes, *numbers: int) -> list[bytes]:
    return [value for number, value in _fields(data) if number in numbers and isinstance(value, bytes)]


def _has_quantity(cel_type: bytes | None, elements_only: bool = False) -> bool:
    """Whether a cel.expr.Type is Quantity or holds one (list elements, map keys and values,
    optional); with ``elements_only``, only a list whose elements hold one counts."""
    if cel_type is None:
        return False
    for number, value in _fields(cel_type):
        if not isinstance(value, bytes):
            continue
        if elements_only:
            if number == 6:  # list_type.elem_type
                return any(_has_quantity(element) for element in _submessages(value, 1))
            continue
        if number == 9 and value.decode() == QUANTITY_TYPE_NAME:  # message_type
            return True
        parts = {6: (1,), 7: (1, 2), 14: (2,)}.get(number, ())  # list elem, map key/value, abstract params
        if any(_has_quantity(part) for part in _submessages(value, *parts)):
            return True
    return False


def _expr_id(expr: bytes) -> int:
    return next((value for number, value in _fields(expr) if number == 2 and isinstance(value, int)), 0)


def _compares(expr: bytes, types: dict[int, bytes]) -> bool:
    """Whether a cel.expr.Expr applies an equality function to an operand typed as a Quantity."""
    for number, value in _fields(expr):
        if not isinstance(value, bytes):
            continue
        if number == 6:  # call_expr: target = 1, function = 2, args = 3
            function = b"".join(_submessages(value, 2)).decode()
            target, args = _submessages(value, 1), _submessages(value, 3)
            operands = [types.get(_expr_id(operand)) for operand in target + args]
            if function == "@in" and len(operands) == 2:  # element in list (a map's keys are no Quantity)
                if _has_quantity(operands[0]) or _has_quantity(operands[1], elements_only=True):
                    return True
            elif function in _EQUALITY_FUNCTIONS and any(_has_quantity(operand) for operand in operands):
                return True
            children = target + args
        elif number in (5, 7):  # select_expr.operand, list_expr.elements
            children = _submessages(value, 1)
        elif number == 8:  # struct_expr.entries: map_key = 3, value = 4
            children = [child for entry in _submessages(value, 2) for child in _submessages(entry, 3, 4)]
        elif number == 9:  # comprehension_expr: iter_range, accu_init, loop_condition, loop_step, result
            children = _submessages(value, 2, 4, 5, 6, 7)
        else:
            continue
        if any(_compares(child, types) for child in children):
            return True
    return False


def compares_quantities(program: Any) -> bool:
    """Whether a compiled expression compares values statically typed as (or holding) Quantity
    with ==, !=, in, indexOf or lastIndexOf. It reads the checked expression (cel.expr.CheckedExpr
    in a google.protobuf.Any) that ``program.serialize()`` returns."""
    serialized = program.serialize()
    checked = next((value for number, value in _fields(serialized) if number == 2 and isinstance(value, bytes)), b"")
    types: dict[int, bytes] = {}
    expr = b""
    for number, value in _fields(checked):
        if number == 3 and isinstance(value, bytes):  # type_map entry: key = 1, value = 2
            entry = dict(_fields(value))
            key, cel_type = entry.get(1), entry.get(2)
            if isinstance(key, int) and isinstance(cel_type, bytes):
                types[key] = cel_type
        elif number == 4 and isinstance(value, bytes):
            expr = value
    return _compares(expr, types)
