"""Command templates render in a sandbox that stops escapes and runaway work per device."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from service.devices.command_templates import (
    TemplateRefused,
    compile_template,
    render_commands,
    validate_template,
)
from service.errors import InvalidInput
from service.inventory.device import Device

DEVICE = Device(
    id="d1",
    name="fra1-rtr-01",
    primary_ip4="10.0.0.1/24",
    network_driver="cisco_ios",
    platform="Cisco IOS",
    location_path=("Europe", "fra1"),
    role="router",
    tags=("core",),
    custom_fields=MappingProxyType({"uplink": "Gi0/1"}),
)


def render(template: str, **variables: object) -> list[str]:
    return render_commands(compile_template(template), DEVICE, variables)


def test_the_nautobot_record_and_user_variables_fill_the_commands() -> None:
    template = (
        "show run interface {{ nautobot.custom_fields.uplink }}\n"
        "{% for tag in device.tags %}show tag {{ tag.name }}{% endfor %}\n"
        "  \n"
        "ping {{ nautobot.primary_ip4.host }} repeat {{ user_variables.count }}\n"
        "show {{ '%s-%03d'|format(nautobot.location.name, 7) }}\n"
    )
    assert render(template, count=5) == [
        "show run interface Gi0/1",
        "show tag core",
        "ping 10.0.0.1 repeat 5",
        "show fra1-007",
    ]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ ''.__class__.__mro__ }}", "access to attribute '__class__' of 'str' object is unsafe"),
        ("{{ nautobot.__class__ }}", "unsafe"),
        ("{{ cycler.__init__.__globals__ }}", "unsafe"),
        ("{% set x = nautobot.tags.append(1) %}", "unsafe"),
        ("{{ 'x' * 1000000 }}", "repetition longer than"),
        ("{{ 9 ** 99999 }}", "exponent 99999"),
        ("{{ '%999999s' % 'x' }}", "%-format with a width"),
        ("{{ 'x'|center(999999999) }}", "too long a text"),
        ("{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}", "range"),
        ("{% for i in range(1000) %}{{ 'y' * 9999 }}{% endfor %}", "longer than 1000000"),
    ],
)
def test_the_sandbox_refuses_escapes_and_runaway_work(template: str, message: str) -> None:
    with pytest.raises(TemplateRefused) as refused:
        render(template)
    assert refused.value.message.startswith("template refused by the sandbox")
    assert message in refused.value.message


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("show {{ nautobot.no_such_field }}", "has no attribute 'no_such_field'"),
        ("show {{ undefined_name }}", "'undefined_name' is undefined"),
        ("show {{ 1 // 0 }}", "ZeroDivisionError"),
        ("{# nothing #}\n   \n", "rendered no commands"),
    ],
)
def test_a_template_that_cannot_render_fails_the_device(template: str, message: str) -> None:
    with pytest.raises(TemplateRefused) as refused:
        render(template)
    assert message in refused.value.message


def test_syntax_is_checked_when_a_template_is_saved() -> None:
    assert validate_template("show version\n") == "show version\n"
    with pytest.raises(InvalidInput) as invalid:
        validate_template("show\n{% if %}")
    assert invalid.value.details[0]["line"] == 2
    with pytest.raises(InvalidInput):
        validate_template("   \n")
