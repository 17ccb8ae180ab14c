"""What simulated devices say: prompts, pager, command answers and sample configurations
per platform (``cisco_ios``, ``cisco_nxos``, ``arista_eos``, ``juniper_junos``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class CliDialect:
    """The CLI behaviour of one platform in the lab."""

    platform: str
    paging_off: tuple[str, ...]
    more: str
    # What the terminal receives after a pager key: erases the pager prompt.
    more_erase: str
    running_command: str
    startup_command: str | None
    invalid: str
    junos_prompt: bool = False

    def prompt(self, hostname: str, username: str) -> str:
        return f"{username}@{hostname}> " if self.junos_prompt else f"{hostname}#"


_BACKSPACES = "\b" * 10 + " " * 10 + "\b" * 10

DIALECTS = {
    "cisco_ios": CliDialect(
        "cisco_ios",
        ("terminal length 0",),
        " --More-- ",
        _BACKSPACES,
        "show running-config",
        "show startup-config",
        "% Invalid input detected at '^' marker.",
    ),
    "cisco_nxos": CliDialect(
        "cisco_nxos",
        ("terminal length 0",),
        " --More-- ",
        _BACKSPACES,
        "show running-config",
        "show startup-config",
        "% Invalid command at '^' marker.",
    ),
    "arista_eos": CliDialect(
        "arista_eos",
        ("terminal length 0",),
        " --More-- ",
        _BACKSPACES,
        "show running-config",
        "show startup-config",
        "% Invalid input",
    ),
    "juniper_junos": CliDialect(
        "juniper_junos",
        ("set cli screen-length 0",),
        "---(more)---",
        "\r" + " " * 12 + "\r",
        "show configuration",
        None,
        "error: syntax error",
        junos_prompt=True,
    ),
}


def sample_config(hostname: str, platform: str, *, revision: int = 1, interfaces: int = 12) -> str:
    """A plausible configuration body (long enough to page) for a lab device."""
    if platform == "juniper_junos":
        lines = [
            "version 21.4R3;",
            "system {",
            f"    host-name {hostname};",
            f"    /* revision {revision} */",
            "    services { ssh; netconf { ssh; } }",
            "}",
            "interfaces {",
        ]
        for index in range(interfaces):
            lines += [
                f"    xe-0/0/{index} {{",
                f'        description "uplink {index}";',
                f"        unit 0 {{ family inet {{ address 10.{revision}.{index}.1/31; }} }}",
                "    }",
            ]
        return "\n".join([*lines, "}"]) + "\n"
    name = {"cisco_nxos": "Ethernet1/", "arista_eos": "Ethernet"}.get(platform, "GigabitEthernet0/")
    lines = ["!", f"hostname {hostname}", f"! revision {revision}", "!"]
    for index in range(interfaces):
        lines += [
            f"interface {name}{index}",
            f" description uplink {index}",
            f" ip address 10.{revision}.{index}.1 255.255.255.254",
            "!",
        ]
    return "\n".join([*lines, "end"]) + "\n"


def running_config_output(platform: str, body: str) -> str:
    """The running configuration as the device prints it, with its volatile header."""
    now = datetime.now(UTC).strftime("%H:%M:%S UTC %a %b %d %Y")
    if platform == "cisco_ios":
        header = [
            "Building configuration...",
            "",
            f"Current configuration : {len(body)} bytes",
            f"! Last configuration change at {now}",
        ]
    elif platform == "cisco_nxos":
        header = ["!Command: show running-config", f"!Time: {now}"]
    elif platform == "arista_eos":
        header = ["! Command: show running-config", f"! Time: {now}"]
    else:
        header = [f"## Last commit: {now} by admin"]
    return "\n".join(header) + "\n" + body


def startup_config_output(platform: str, body: str | None) -> str:
    """The startup configuration as printed, or the device's "none saved" answer."""
    if body is None:
        return "startup-config is not present\n"
    if platform == "cisco_ios":
        return f"Using {len(body)} out of 262144 bytes\n" + body
    return body


def version_output(hostname: str, platform: str) -> str:
    """A short ``show version`` answer."""
    return {
        "cisco_ios": f"Cisco IOS XE Software, Version 17.9.4\n{hostname} uptime is 3 weeks\n",
        "cisco_nxos": (
            "Cisco Nexus Operating System (NX-OS) Software\n"
            f"  NXOS: version 10.3(4a)\n  Device name: {hostname}\n"
        ),
        "arista_eos": (
            f"Arista DCS-7280SR-48C6\nSoftware image version: 4.31.2F\nHostname: {hostname}\n"
        ),
        "juniper_junos": f"Hostname: {hostname}\nModel: mx204\nJunos: 21.4R3-S5\n",
    }[platform]
