"""Platform profiles: how to talk to each kind of network device over an SSH shell.

A profile knows the device's prompt, how to switch paging off, its pager prompt, which
commands print the running and the startup configuration (``None`` where the platform has
no startup configuration), the lines of a configuration that change on every read (so an
unchanged device is not reported as changed), and what a refused command looks like.

The profile comes from Nautobot's ``platform.network_driver`` (Netmiko names) or, when
that is empty, from the platform name. An unknown platform is an error for that device:
sending Cisco commands to everything (the origin's behaviour) is not a fallback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from service.errors import OpsjobsError

# A CLI prompt: a host name (with the characters devices allow) ending in > or #, alone
# at the end of the output.
_CLI_PROMPT = re.compile(r"(?:^|[\r\n])([\w.\-/:@()]{1,80}[>#]) ?$")
_JUNOS_PROMPT = re.compile(r"(?:^|[\r\n])([\w.\-]{1,64}@[\w.\-]{1,80}[>#%]) ?$")
_CISCO_ERROR = re.compile(r"^% ", re.MULTILINE)


@dataclass(frozen=True)
class PlatformProfile:
    """Everything platform-specific about a device session."""

    name: str
    prompt: re.Pattern[str]
    paging_off: tuple[str, ...]
    more: re.Pattern[str]
    running_config_command: str
    startup_config_command: str | None
    volatile_lines: re.Pattern[str]
    error: re.Pattern[str]
    #: What the device prints instead of a configuration it does not have.
    absent: re.Pattern[str] | None = None

    def clean_config(self, text: str) -> str:
        """``text`` without the lines that change on every read (timestamps, sizes).

        A device's "there is no such configuration" answer becomes the empty string.
        """
        if self.absent is not None and self.absent.match(text.strip()):
            return ""
        kept = [line for line in text.split("\n") if not self.volatile_lines.match(line)]
        return "\n".join(kept).strip("\n") + "\n" if any(kept) else ""

    def refused(self, output: str) -> str | None:
        """The device's error line if ``output`` is a refusal of the command, else None."""
        match = self.error.search(output)
        if match is None:
            return None
        return output[match.start() :].split("\n", 1)[0].strip()


CISCO_IOS = PlatformProfile(
    name="cisco_ios",
    prompt=_CLI_PROMPT,
    paging_off=("terminal length 0",),
    more=re.compile(r" ?--More-- ?"),
    running_config_command="show running-config",
    startup_config_command="show startup-config",
    volatile_lines=re.compile(
        r"^(?:Building configuration\.\.\.|Current configuration : \d+ bytes|"
        r"Using \d+ out of \d+ bytes|! Last configuration change at |"
        r"! NVRAM config last updated at |! No configuration change since)"
    ),
    error=_CISCO_ERROR,
    absent=re.compile(r"^startup-config is not present"),
)

CISCO_NXOS = PlatformProfile(
    name="cisco_nxos",
    prompt=_CLI_PROMPT,
    paging_off=("terminal length 0",),
    more=re.compile(r" ?--More-- ?"),
    running_config_command="show running-config",
    startup_config_command="show startup-config",
    volatile_lines=re.compile(
        r"^!(?:Command: |Running configuration last done at: |Time: |"
        r"Startup config saved at: )"
    ),
    error=_CISCO_ERROR,
)

ARISTA_EOS = PlatformProfile(
    name="arista_eos",
    prompt=_CLI_PROMPT,
    paging_off=("terminal length 0",),
    more=re.compile(r" ?--More-- ?"),
    running_config_command="show running-config",
    startup_config_command="show startup-config",
    volatile_lines=re.compile(r"^! (?:Command: |device: |Startup-config last modified at |Time: )"),
    error=_CISCO_ERROR,
)

JUNIPER_JUNOS = PlatformProfile(
    name="juniper_junos",
    prompt=_JUNOS_PROMPT,
    paging_off=("set cli screen-length 0",),
    more=re.compile(r"---\(more(?: \d+%)?\)--- ?"),
    running_config_command="show configuration",
    # Junos boots from its committed configuration: there is no separate startup config.
    startup_config_command=None,
    volatile_lines=re.compile(r"^## (?:Last commit: |Last changed: )"),
    error=re.compile(r"^(?:error: |syntax error|unknown command)", re.MULTILINE),
)

PROFILES: dict[str, PlatformProfile] = {
    profile.name: profile for profile in (CISCO_IOS, CISCO_NXOS, ARISTA_EOS, JUNIPER_JUNOS)
}

#: Nautobot network drivers (Netmiko names) served by another profile's CLI.
DRIVER_ALIASES = {"cisco_xe": "cisco_ios", "juniper": "juniper_junos"}

#: Platform-name fragments tried in order when a platform has no network driver; NX-OS
#: comes before IOS so "Cisco NX-OS" is not taken for IOS.
NAME_HINTS = (
    (("nx-os", "nxos"), "cisco_nxos"),
    (("ios-xr", "ios xr", "iosxr"), ""),
    (("ios",), "cisco_ios"),
    (("junos", "juniper"), "juniper_junos"),
    (("arista", "eos"), "arista_eos"),
)


class UnsupportedPlatform(OpsjobsError):
    """The device's platform has no profile."""

    code = "unsupported_platform"


def profile_for(network_driver: str | None, platform_name: str | None) -> PlatformProfile:
    """The profile for a device from its Nautobot platform; raises :class:`UnsupportedPlatform`."""
    if network_driver:
        driver = DRIVER_ALIASES.get(network_driver, network_driver)
        if driver in PROFILES:
            return PROFILES[driver]
        raise UnsupportedPlatform(f"no platform profile for network driver {network_driver!r}")
    if platform_name:
        lowered = platform_name.lower()
        for fragments, name in NAME_HINTS:
            if any(fragment in lowered for fragment in fragments):
                if name:
                    return PROFILES[name]
                break
        raise UnsupportedPlatform(f"no platform profile for platform {platform_name!r}")
    raise UnsupportedPlatform("the device has no platform in Nautobot")
