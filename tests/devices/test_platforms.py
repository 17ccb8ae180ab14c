from __future__ import annotations

import pytest

from service.devices.platforms import (
    ARISTA_EOS,
    CISCO_IOS,
    CISCO_NXOS,
    JUNIPER_JUNOS,
    PlatformProfile,
    UnsupportedPlatform,
    profile_for,
)


@pytest.mark.parametrize(
    ("driver", "name", "expected"),
    [
        ("cisco_ios", "anything", CISCO_IOS),
        ("cisco_xe", None, CISCO_IOS),
        ("cisco_nxos", "Cisco IOS", CISCO_NXOS),  # the driver wins over the name
        ("arista_eos", None, ARISTA_EOS),
        ("juniper_junos", None, JUNIPER_JUNOS),
        (None, "Cisco NX-OS", CISCO_NXOS),
        ("", "cisco nxos 10", CISCO_NXOS),
        (None, "Cisco IOS-XE", CISCO_IOS),
        (None, "Juniper MX", JUNIPER_JUNOS),
        (None, "JunOS", JUNIPER_JUNOS),
        (None, "Arista", ARISTA_EOS),
        (None, "EOS", ARISTA_EOS),
    ],
)
def test_profile_from_network_driver_or_platform_name(
    driver: str | None, name: str | None, expected: PlatformProfile
) -> None:
    assert profile_for(driver, name) is expected


@pytest.mark.parametrize(
    ("driver", "name"),
    [("paloalto_panos", None), (None, "PAN-OS"), (None, "Cisco IOS-XR"), (None, None)],
)
def test_unknown_platforms_are_refused_not_treated_as_cisco(
    driver: str | None, name: str | None
) -> None:
    with pytest.raises(UnsupportedPlatform):
        profile_for(driver, name)


def test_platforms_without_startup_configuration() -> None:
    assert JUNIPER_JUNOS.startup_config_command is None
    assert JUNIPER_JUNOS.running_config_command == "show configuration"
    for profile in (CISCO_IOS, CISCO_NXOS, ARISTA_EOS):
        assert profile.running_config_command == "show running-config"
        assert profile.startup_config_command == "show startup-config"


def test_clean_config_drops_only_volatile_lines() -> None:
    raw = (
        "Building configuration...\n\nCurrent configuration : 120 bytes\n"
        "! Last configuration change at 10:00:01 UTC Mon Jan 01 2024\n!\nhostname r1\n!\nend\n"
    )
    assert CISCO_IOS.clean_config(raw) == "!\nhostname r1\n!\nend\n"
    assert CISCO_IOS.clean_config("startup-config is not present\n") == ""
    junos = "## Last commit: 2024-01-01 by admin\nsystem {\n    host-name r1;\n}\n"
    assert JUNIPER_JUNOS.clean_config(junos) == "system {\n    host-name r1;\n}\n"


def test_refusals_are_recognised_per_platform() -> None:
    assert CISCO_IOS.refused("% Invalid input detected at '^' marker.\n") == (
        "% Invalid input detected at '^' marker."
    )
    assert CISCO_IOS.refused("hostname r1\n") is None
    assert JUNIPER_JUNOS.refused("error: syntax error\n") == "error: syntax error"
