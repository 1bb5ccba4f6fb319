"""The Kubernetes CEL quantity library in the offline CEL environment (tests/validation/quantity.py),
checked against what the API server's library (k8s.io/apiserver/pkg/cel/library/quantity.go) and
resource.Quantity (k8s.io/apimachinery/pkg/api/resource) do."""

from __future__ import annotations

from typing import Any

import pytest

from schemas import CelError, evaluate_cel


@pytest.mark.parametrize(
    "expression",
    [
        "quantity('1').compareTo(quantity('1000m')) == 0",
        "quantity('1Ki').compareTo(quantity('1024')) == 0",
        "quantity('1e3').compareTo(quantity('1k')) == 0",
        "quantity('200M').compareTo(quantity('0.2G')) == 0",
        "quantity('50M').compareTo(quantity('50Mi')) == -1",
        "quantity('50Mi').compareTo(quantity('50M')) == 1",
        "quantity('1').isLessThan(quantity('2'))",
        "!quantity('2').isLessThan(quantity('2'))",
        "quantity('150Mi').isGreaterThan(quantity('100Mi'))",
        "!quantity('50M').isGreaterThan(quantity('100M'))",
        # sign is a global function on the API server (cel.Overload, not MemberOverload)
        "sign(quantity('+1')) == 1",
        "sign(quantity('0')) == 0",
        "sign(quantity('-500m')) == -1",
        "quantity('500m').isInteger() == false",
        "quantity('2').asInteger() == 2",
        "quantity('50k').asInteger() == 50000",
        "quantity('50000000G').isInteger()",
        "!quantity('9999999999999999999999999999999999999G').isInteger()",
        "quantity('50.703k').asApproximateFloat() == 50703.0",
        "quantity('1').add(quantity('1')).compareTo(quantity('2')) == 0",
        "quantity('1').add(quantity('1')).asInteger() == 2",
        "quantity('50k').add(quantity('20')).compareTo(quantity('50.02k')) == 0",
        "quantity('50k').sub(20).compareTo(quantity('49980')) == 0",
        "quantity('50k').add(20).sub(quantity('100k')).asInteger() == -49980",
        "quantity('50k').add(20).sub(quantity('100k')).sub(-50000).asInteger() == 20",
        "isQuantity('16Gi')",
        "isQuantity('1.3G') && isQuantity('10000k') && isQuantity('-1.5e-3') && isQuantity('1.')",
        "isQuantity('64 GB') == false",
        # resource.ParseQuantity rounds up to 1n and caps binary suffixes at 2^63-1
        "quantity('3.001n').compareTo(quantity('4n')) == 0",
        "quantity('9Ei').compareTo(quantity('9223372036854775807')) == 0",
    ],
)
def test_quantity_library(expression: str) -> None:
    assert evaluate_cel(expression, {}) is True


@pytest.mark.parametrize("text", ["64 GB", " 1", "1 ", "200K", "10Mo", "10Mm", "1,3G", "1.1.M", "Three", "1e", ""])
def test_not_quantities(text: str) -> None:
    assert evaluate_cel("isQuantity(q)", {"q": text}) is False
    with pytest.raises(CelError, match="not a Kubernetes quantity"):
        evaluate_cel("sign(quantity(q)) == 0", {"q": text})


def test_invalid_quantity_raises() -> None:
    with pytest.raises(CelError):
        evaluate_cel("quantity('x').isInteger()", {})


@pytest.mark.parametrize(
    ("text", "integer"),
    [("4", 4), ("50k", 50_000), ("1Ki", 1024), ("10Ti", 10 * 2**40), ("1e3", 1000), ("1.5e3", 1500), ("0", 0)],
)
def test_integer_quantities(text: str, integer: int) -> None:
    assert evaluate_cel("quantity(q).isInteger() && quantity(q).asInteger() == n", {"q": text, "n": integer}) is True


@pytest.mark.parametrize("text", ["500m", "4.0", "1000m", "0m", "1Pi", "1.5Gi", "9Ei"])
def test_quantities_that_are_no_int64_for_the_api_server(text: str) -> None:
    # AsInt64 works only on an int64 mantissa with an exponent >= 0: "4.0" is 40e-1 and "1000m"
    # 1000e-3 (false although whole), "1Pi" and "1.5Gi" take the inf.Dec path of ParseQuantity.
    assert evaluate_cel("quantity(q).isInteger()", {"q": text}) is False
    with pytest.raises(CelError, match="cannot convert value to integer"):
        evaluate_cel("quantity(q).asInteger() > 0", {"q": text})


@pytest.mark.parametrize(
    "expression",
    [
        "quantity('+1').sign() == 1",  # found no matching overload on the API server
        "quantity('1').compareTo(1) == 0",
        "quantity('1').isLessThan(2)",
        "isQuantity(1)",
        "quantity(1)",
    ],
)
def test_calls_the_api_server_does_not_compile_fail(expression: str) -> None:
    with pytest.raises(CelError, match="INVALID_ARGUMENT"):
        evaluate_cel(expression, {})


@pytest.mark.parametrize(
    "expression",
    [
        "quantity('1') == quantity('1000m')",
        "quantity('1') != quantity('2')",
        "quantity('1') in [quantity('1')]",
        "[quantity('1')].indexOf(quantity('1')) == 0",
        "[quantity('1')] == [quantity('1')]",
    ],
)
def test_quantity_equality_is_refused(expression: str) -> None:
    # The API server compares numbers; the engine would compare the messages standing for them.
    with pytest.raises(CelError, match="use compareTo"):
        evaluate_cel(expression, {})


def test_huge_exact_arithmetic_is_refused() -> None:
    assert evaluate_cel("quantity('1e2000000000').isGreaterThan(quantity('1e1999999999'))", {}) is True
    with pytest.raises(CelError, match="too far apart"):
        evaluate_cel("quantity('1e2000000000').add(1).isInteger()", {})


def test_a_quantity_result_has_no_plain_value() -> None:
    with pytest.raises(CelError, match="evaluates to a Quantity"):
        evaluate_cel("quantity('1')", {})
    assert evaluate_cel("'k' in {'k': quantity('1')}", {}) is True  # map keys are strings


def test_admission_expression_over_a_bound_object() -> None:
    expression = (
        "object.limits.all(k, isQuantity(string(object.limits[k]))"
        " && quantity(string(object.limits[k])).compareTo(quantity(string(object.requests[k]))) == 0)"
    )

    def bindings(request: Any) -> dict[str, Any]:
        return {"object": {"limits": {"nvidia.com/gpu": 1}, "requests": {"nvidia.com/gpu": request}}}

    assert evaluate_cel(expression, bindings("1.0")) is True
    assert evaluate_cel(expression, bindings("2")) is False
