from typing import Any

import pytest
from plait.flows import Flow, coerce_inputs
from plait_sdk import ValidationError


def flow_with(*inputs: dict[str, Any]) -> Flow:
    return Flow.model_validate(
        {
            "id": "f",
            "namespace": "n",
            "inputs": list(inputs),
            "tasks": [{"id": "t", "type": "plait.core.Log", "message": "x"}],
        }
    )


@pytest.mark.parametrize(
    ("decl", "given", "expected"),
    [
        ({"type": "STRING"}, "hello", "hello"),
        ({"type": "STRING", "validator": "[a-z]+"}, "abc", "abc"),
        ({"type": "INT"}, "42", 42),
        ({"type": "INT", "min": 1, "max": 10}, 10, 10),
        ({"type": "FLOAT"}, "2.5", 2.5),
        ({"type": "BOOLEAN"}, "true", True),
        ({"type": "BOOLEAN"}, "no", False),
        ({"type": "DATETIME"}, "2024-01-02T03:04:05+02:00", "2024-01-02T01:04:05Z"),
        ({"type": "DATE"}, "2024-02-29", "2024-02-29"),
        ({"type": "TIME"}, "10:30", "10:30:00"),
        ({"type": "DURATION"}, "PT1H30M", "PT1H30M"),
        ({"type": "DURATION", "min": "PT1M"}, "PT5M", "PT5M"),
        ({"type": "JSON"}, '{"a": [1, 2]}', {"a": [1, 2]}),
        ({"type": "YAML"}, "a: 1\nb: [x]", {"a": 1, "b": ["x"]}),
        ({"type": "URI"}, "https://example.com/x?y=1", "https://example.com/x?y=1"),
        ({"type": "EMAIL"}, "ada@example.com", "ada@example.com"),
        ({"type": "SELECT", "values": ["red", "blue"]}, "red", "red"),
        ({"type": "ENUM", "values": ["A", "B"]}, "B", "B"),
        ({"type": "MULTISELECT", "values": ["a", "b", "c"]}, '["a", "c"]', ["a", "c"]),
        ({"type": "SELECT", "values": ["a"], "allowCustomValue": True}, "z", "z"),
        ({"type": "ARRAY", "itemType": "INT"}, "[1, 2, 3]", [1, 2, 3]),
        ({"type": "ARRAY", "itemType": "INT"}, "4,5", [4, 5]),
        ({"type": "ARRAY", "itemType": "DATE"}, ["2024-01-01"], ["2024-01-01"]),
        ({"type": "SECRET"}, "s3cr3t", "s3cr3t"),
        ({"type": "FILE"}, "plait:///n/f/file.csv", "plait:///n/f/file.csv"),
        (
            {"type": "DATETIME", "after": "2020-01-01T00:00:00Z"},
            "2021-01-01T00:00:00Z",
            "2021-01-01T00:00:00Z",
        ),
    ],
)
def test_each_type_is_coerced(decl: dict[str, Any], given: Any, expected: Any) -> None:
    flow = flow_with({"id": "x", **decl})
    assert coerce_inputs(flow, {"x": given}) == {"x": expected}


@pytest.mark.parametrize(
    ("decl", "given", "message"),
    [
        ({"type": "STRING", "validator": "[a-z]+"}, "ABC", "does not match"),
        ({"type": "INT"}, "4.5", "expected an integer"),
        ({"type": "INT"}, True, "expected an integer"),
        ({"type": "INT", "min": 5}, 4, "less than the minimum 5"),
        ({"type": "FLOAT", "max": 1}, 1.5, "greater than the maximum 1"),
        ({"type": "BOOLEAN"}, "maybe", "expected true or false"),
        ({"type": "DATETIME"}, "2024-01-02T03:04:05", "no time zone"),
        (
            {"type": "DATETIME", "before": "2020-01-01T00:00:00Z"},
            "2021-01-01T00:00:00Z",
            "not before",
        ),
        ({"type": "DATE"}, "02/03/2024", "expected an ISO-8601 date"),
        ({"type": "DURATION"}, "5m", "ISO-8601 duration"),
        ({"type": "DURATION", "max": "PT1M"}, "PT2M", "greater than the maximum"),
        ({"type": "JSON"}, "{nope", "not valid JSON"),
        ({"type": "URI"}, "not a uri", "expected a URI"),
        ({"type": "EMAIL"}, "nobody", "e-mail"),
        ({"type": "SELECT", "values": ["red", "blue"]}, "green", "not one of red, blue"),
        ({"type": "MULTISELECT", "values": ["a"]}, "a,z", "'z' is not one of a"),
        ({"type": "ARRAY", "itemType": "INT"}, '[1, "x"]', "expected an integer"),
    ],
)
def test_invalid_values_are_refused_with_the_input_named(
    decl: dict[str, Any], given: Any, message: str
) -> None:
    flow = flow_with({"id": "x", **decl})
    with pytest.raises(ValidationError) as caught:
        coerce_inputs(flow, {"x": given})
    (problem,) = caught.value.problems
    assert problem.field == "inputs.x"
    assert message in problem.reason


def test_defaults_required_and_unknown_inputs_all_reported_at_once() -> None:
    flow = flow_with(
        {"id": "name", "type": "STRING", "defaults": "world"},
        {"id": "count", "type": "INT"},
        {"id": "optional", "type": "STRING", "required": False},
    )
    assert coerce_inputs(flow, {"count": "2"}) == {"name": "world", "count": 2, "optional": None}
    with pytest.raises(ValidationError) as caught:
        coerce_inputs(flow, {"nmae": "x"})
    assert [str(p) for p in caught.value.problems] == [
        "inputs.nmae: unknown input 'nmae'; did you mean 'name'?",
        "inputs.count: required input is missing",
    ]
