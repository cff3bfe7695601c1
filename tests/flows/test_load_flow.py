from pathlib import Path

import pytest
from plait.flows import FlowableTask, load_flow, parse, validate_flow_text
from plait.plugins import TypeRegistry
from plait_sdk import UserError, ValidationError

KESTRA_HELLO = """\
id: hello_world
namespace: company.team
description: Hello World flow, written for Kestra
labels:
  owner: data-team
  env: dev
inputs:
  - id: user
    type: STRING
    defaults: Kestra user
tasks:
  - id: first_task
    type: io.kestra.plugin.core.debug.Return
    format: thrilled
  - id: second_task
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.user }} is {{ outputs.first_task.value }}"
    level: WARN
  - id: outputs
    type: io.kestra.plugin.core.output.OutputValues
    values:
      result: "{{ outputs.first_task.value }}"
outputs:
  - id: final
    type: STRING
    value: "{{ outputs.first_task.value }}"
"""


def test_a_flow_written_for_kestra_validates_unchanged(registry: TypeRegistry) -> None:
    flow = load_flow(KESTRA_HELLO, registry=registry)
    assert [t.type for t in flow.tasks] == [
        "plait.core.Return",
        "plait.core.Log",
        "plait.core.OutputValues",
    ]
    assert all(t.type_info is not None for t in flow.tasks)
    assert flow.tasks[1].properties == {
        "message": "{{ inputs.user }} is {{ outputs.first_task.value }}",
        "level": "WARN",
    }
    assert flow.labels == {"owner": "data-team", "env": "dev"}


def test_templated_properties_are_accepted_whatever_the_declared_type(
    registry: TypeRegistry,
) -> None:
    text = """\
id: a
namespace: n
tasks:
  - id: s
    type: plait.core.Sleep
    duration: "{{ inputs.wait }}"
  - id: l
    type: plait.core.Log
    message: hi
    level: "{{ vars.level }}"
"""
    flow = load_flow(text, registry=registry)
    assert flow.tasks[0].properties["duration"] == "{{ inputs.wait }}"


def test_plugin_defaults_fill_missing_properties_and_forced_ones_override(
    registry: TypeRegistry,
) -> None:
    text = """\
id: a
namespace: n
pluginDefaults:
  - type: io.kestra.plugin.core.log.Log
    values:
      level: ERROR
      message: default message
  - type: plait.core
    forced: true
    values:
      format: forced
tasks:
  - id: own
    type: plait.core.Log
    message: mine
  - id: defaulted
    type: plait.core.Log
    level: DEBUG
  - id: r
    type: plait.core.Return
    format: ignored
"""
    flow = load_flow(text, registry=registry)
    own, defaulted, ret = flow.tasks
    assert own.properties == {"message": "mine", "level": "ERROR"}
    assert defaulted.properties == {"message": "default message", "level": "DEBUG"}
    assert ret.properties == {"format": "forced"}


def test_labels_as_a_list_of_pairs_and_non_string_values(registry: TypeRegistry) -> None:
    text = """\
id: a
namespace: n
labels:
  - key: team
    value: data
  - key: tier
    value: 1
tasks:
  - id: x
    type: plait.core.Log
    message: hi
"""
    assert load_flow(text, registry=registry).labels == {"team": "data", "tier": "1"}


def test_yaml_1_2_booleans_keep_yes_no_as_strings() -> None:
    doc = parse("country: NO\nanswer: yes\nreal: true\nalso: False\n")
    assert doc.data == {"country": "NO", "answer": "yes", "real": True, "also": False}


def test_positions_are_exact_for_nested_values() -> None:
    doc = parse("a:\n  b:\n    - x\n    - {c: 1}\n")
    assert (doc.values[("a", "b", 1, "c")].line, doc.values[("a", "b", 1, "c")].column) == (4, 11)
    assert (doc.keys[("a", "b")].line, doc.keys[("a", "b")].column) == (2, 3)


def test_yaml_merge_keys_are_resolved() -> None:
    doc = parse("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n")
    assert doc.data["other"] == {"x": 1, "y": 2}


def test_reading_a_missing_file_is_a_user_error(registry: TypeRegistry, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read the flow file"):
        load_flow(tmp_path / "nope.yaml", registry=registry)


def test_validation_error_lists_problems_in_file_order(registry: TypeRegistry) -> None:
    text = "id: a\nnamespace: n\ntasks:\n  - id: x\n    type: nope\n  - id: y\n    type: nope2\n"
    with pytest.raises(ValidationError) as caught:
        load_flow(text, registry=registry, file="f.yaml")
    lines = [p.line for p in caught.value.problems]
    assert lines == sorted(lines)
    assert len(lines) == 2


def test_flowable_base_class_finds_child_specs() -> None:
    assert FlowableTask.flowable is True


def test_flow_retry_behavior_and_kestras_older_max_attempt(registry: TypeRegistry) -> None:
    from plait.flows import RetryBehavior

    flow = load_flow(
        """
id: old
namespace: tests
retry: {type: constant, interval: PT1S, maxAttempt: 2, behavior: CREATE_NEW_EXECUTION}
tasks:
  - id: hello
    type: plait.core.Log
    message: hi
    retry: {type: constant, interval: PT1S, maxAttempt: 4}
""",
        registry=registry,
    )
    assert flow.retry is not None
    assert flow.retry.max_attempts == 2
    assert flow.retry.behavior is RetryBehavior.CREATE_NEW_EXECUTION
    assert flow.execution_retry is flow.retry
    assert flow.task_retry is None
    assert flow.tasks[0].retry is not None
    assert flow.tasks[0].retry.max_attempts == 4
    default = load_flow(
        "id: d\nnamespace: t\nretry: {type: constant, interval: PT1S, maxAttempts: 2}\n"
        "tasks: [{id: a, type: plait.core.Log, message: hi}]\n",
        registry=registry,
    )
    assert default.task_retry is default.retry
    assert default.execution_retry is None


@pytest.mark.parametrize(
    ("namespace", "flow_id"),
    [
        ("other", "a"),  # the same id in another namespace is another flow
        ("n", "b"),
        ("n", "'{{ flow.id }}'"),  # templated: stopped at run time by subflow_max_depth
        ("'{{ flow.namespace }}'", "a"),
    ],
)
def test_only_a_literal_call_of_the_flow_itself_is_refused(
    registry: TypeRegistry, namespace: str, flow_id: str
) -> None:
    text = (
        "id: a\nnamespace: n\ntasks:\n  - id: call\n    type: plait.core.Subflow\n"
        f"    namespace: {namespace}\n    flowId: {flow_id}\n"
    )
    assert validate_flow_text(text, registry=registry) == []


def test_a_written_key_overrides_a_merged_one_and_the_first_merged_mapping_wins() -> None:
    # Was reported as a duplicate key: the YAML merge idiom of Kestra flows ("<<: *defaults"
    # then the task's own values) did not validate.
    doc = parse(
        "a: &a {retry: 3, x: 1}\n"
        "b: &b {x: 2, z: 2}\n"
        "task:\n  <<: [*a, *b]\n  retry: 5\n"
        "again: &t\n  <<: *a\n  x: 9\n"
        "copy: *t\n"
    )
    assert doc.problems == []
    assert doc.data["task"] == {"retry": 5, "x": 1, "z": 2}
    assert doc.data["again"] == doc.data["copy"] == {"retry": 3, "x": 9}
    assert doc.keys[("task", "retry")].line == 5  # the written key's position


def test_duplicates_among_written_keys_are_still_reported() -> None:
    doc = parse("c:\n  <<: {x: 0}\n  x: 1\n  x: 2\n")
    assert doc.data == {"c": {"x": 1}}
    assert [str(p) for p in doc.problems] == [
        "4:3: c.x: duplicate key 'x' (first defined at line 3)"
    ]


def test_a_merge_of_a_scalar_is_a_located_error() -> None:
    with pytest.raises(UserError, match=r"^f.yaml:2:7: invalid YAML: expected a mapping"):
        parse("c:\n  <<: 1\n", file="f.yaml")
