"""The ``opsjobs`` parsers: usage errors in one line, and ``opsjobs --help`` with the verbs
in two groups (client verbs, then server verbs)."""

from __future__ import annotations

import argparse
from typing import NoReturn

CLIENT_TITLE = "client verbs (through the API, as the user of your token)"
SERVER_TITLE = "server verbs (on the server; they read settings.toml)"


class OperatorParser(argparse.ArgumentParser):
    """A usage error is one line naming the verb, then exit 2 (``ExitCode.USAGE``)."""

    def error(self, message: str) -> NoReturn:
        verb = self.prog.removeprefix("opsjobs").strip()
        where = f"{verb}: " if verb else ""
        self.exit(2, f"opsjobs: {where}{message} (see {self.prog} --help)\n")


class GroupedHelpParser(OperatorParser):
    """The top parser, whose help lists client verbs and server verbs apart."""

    def format_help(self) -> str:
        from service.client.commands import CLIENT_VERBS

        verbs = next((a for a in self._actions if isinstance(a, argparse._SubParsersAction)), None)
        if verbs is None:  # pragma: no cover - every opsjobs parser has verbs
            return super().format_help()
        formatter = self._get_formatter()
        formatter.add_usage(self.usage, self._actions, self._mutually_exclusive_groups)
        formatter.add_text(self.description)
        choices = list(verbs._get_subactions())
        for title, wanted in ((CLIENT_TITLE, True), (SERVER_TITLE, False)):
            formatter.start_section(title)
            formatter.add_arguments(
                [action for action in choices if (action.dest in CLIENT_VERBS) is wanted]
            )
            formatter.end_section()
        formatter.start_section("options")
        formatter.add_arguments([a for a in self._actions if a.option_strings])
        formatter.end_section()
        formatter.add_text(
            "Run opsjobs COMMAND --help for a verb's options. Exit codes: 0 done, "
            "1 run failed or cancelled (or --fail-on), 2 usage or input error, "
            "3 service unreachable or token refused."
        )
        return formatter.format_help()
