"""The console's pure pieces: a job type's schema as form fields and back, DST days."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from starlette.datastructures import FormData

from executors import get_executor
from service.console.forms import field_errors, parse_parameters, schema_fields, submitted_texts
from service.console.schedule_form import ScheduleForm, mark_dst_days
from service.scheduling.schemas import FireOut

PROGRESS = get_executor("diag.progress").config.model_json_schema()
QUEUES = get_executor("check_queues").config.model_json_schema()
BACKUP = get_executor("backup").config.model_json_schema()


def test_fields_follow_the_schema_types_enums_defaults_and_required() -> None:
    fields = {field.name: field for field in schema_fields(QUEUES, {"mode": "both"})}
    assert fields["mode"].kind == "choice"
    assert fields["mode"].choices == ("count", "bytes", "both", "percent")
    assert fields["scope"].choices == ("cluster", "node")
    assert fields["mode"].value == "both"  # the template's value over the default
    assert (fields["count_red"].kind, fields["count_red"].value) == ("integer", "10000")
    assert fields["bytes_red_mb"].kind == "number"
    assert (fields["include_all_connections"].kind, fields["include_all_connections"].value) == (
        "boolean",
        "false",
    )
    assert fields["cluster_ids"].kind == "json"  # a list, or null
    backup = {field.name: field for field in schema_fields(BACKUP, {})}
    assert backup["repository_id"].required
    assert backup["targets"].kind == "json"
    assert not backup["credential_id"].required


@pytest.mark.parametrize(
    ("typed", "parameters", "errors"),
    [
        ({"steps": "7", "delay": "0.5"}, {"steps": 7, "delay": 0.5}, {}),
        ({"steps": "", "delay": ""}, {}, {}),  # empty keeps the template's value
        ({"steps": "seven", "delay": "0"}, {"delay": 0.0}, {"steps": "must be a whole number"}),
        ({"steps": "1", "delay": "soon"}, {"steps": 1}, {"delay": "must be a number"}),
    ],
)
def test_typed_values_become_parameters_or_errors_next_to_their_field(
    typed: dict[str, str], parameters: dict[str, object], errors: dict[str, str]
) -> None:
    assert parse_parameters(PROGRESS, typed) == (parameters, errors)


def test_an_unticked_box_is_false_and_json_is_parsed() -> None:
    form = FormData([("param.mode", "bytes"), ("param.cluster_ids", '["1", "2"]')])
    texts = submitted_texts(QUEUES, form)
    parameters, errors = parse_parameters(QUEUES, texts)
    assert errors == {}
    assert parameters["include_all_connections"] is False
    assert parameters["cluster_ids"] == ["1", "2"]
    assert parameters["mode"] == "bytes"
    _, bad = parse_parameters(QUEUES, {**texts, "cluster_ids": "[1,"})
    assert bad["cluster_ids"].startswith("not valid JSON")


def test_config_errors_are_keyed_by_the_field_they_name() -> None:
    details = [
        {"loc": ["parameters", "steps"], "msg": "Input should be greater than or equal to 1"},
        {"loc": ["body", "parameters", "targets", "all"], "msg": "bad"},
    ]
    assert field_errors(details) == {
        "steps": "Input should be greater than or equal to 1",
        "targets": "all: bad",
    }
    assert field_errors([{"loc": ["body", "timezone"], "msg": "unknown"}], prefix="body") == {
        "timezone": "unknown"
    }


def test_fires_on_days_the_clocks_change_are_marked() -> None:
    zone = ZoneInfo("Europe/Berlin")
    fires = [
        FireOut(utc=moment, local=moment.astimezone(zone))
        for moment in (
            datetime(2027, 3, 27, 5, tzinfo=UTC),
            datetime(2027, 3, 28, 4, tzinfo=UTC),  # clocks go forward that night
            datetime(2027, 10, 31, 5, tzinfo=UTC),  # and back
            datetime(2027, 11, 1, 5, tzinfo=UTC),
        )
    ]
    assert [item.dst_change for item in mark_dst_days(fires, "Europe/Berlin")] == [
        False,
        True,
        True,
        False,
    ]
    assert not any(item.dst_change for item in mark_dst_days(fires, "UTC"))


def test_a_schedule_form_keeps_what_was_typed() -> None:
    form = ScheduleForm.submitted(
        FormData(
            [
                ("job_identifier", " nightly "),
                ("schedule_type", "weekly"),
                ("time_of_day", "02:30"),
                ("weekdays", "sun"),
                ("weekdays", "mon"),
                ("timezone", "Europe/Berlin"),
                ("parameters", "{nope"),
                ("is_active", "true"),
            ]
        )
    )
    values, errors = form.values()
    assert values["job_identifier"] == "nightly"
    assert values["weekdays"] == ["mon", "sun"]
    assert values["is_active"] is True
    assert values["is_global"] is False
    assert errors == {
        "parameters": "not valid JSON: Expecting property name enclosed in double quotes"
    }
    assert form.spec_values() == {
        "schedule_type": "weekly",
        "time_of_day": "02:30",
        "timezone": "Europe/Berlin",
        "weekdays": ["mon", "sun"],
    }
