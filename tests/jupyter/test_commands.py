"""The one table of ``%pyrolab`` subcommands: every row has a handler, a parser, completion and help."""

from __future__ import annotations

import pytest

from pyrolab_jupyter.jupyter import commands, completion, parsing
from pyrolab_jupyter.jupyter.magics import PyroLab


def test_every_row_has_a_handler_and_a_parser():
    for command in commands.COMMANDS:
        assert callable(getattr(PyroLab, command.handler)), command.key
        assert commands.PARSERS[command.key].description == command.summary
    handlers = {name for name in vars(PyroLab) if name.startswith("_do_")}
    assert handlers == {c.handler for c in commands.COMMANDS}  # no handler outside the table


def test_completion_offers_what_the_parser_takes():
    nothing = list[str]
    for command in commands.COMMANDS:
        offered = completion.candidates(list(command.key), "--", nothing, {}, nothing, nothing)
        taken = [o for a in commands.PARSERS[command.key]._actions for o in a.option_strings]
        assert sorted(offered) == sorted(taken), command.key
    assert completion.candidates([], "", nothing, {}, nothing, nothing) == list(commands.SUBCOMMANDS)
    assert completion.candidates(["connect", "lab.laser"], "", nothing, {}, nothing, nothing) == ["as"]
    assert completion.candidates(["help"], "", nothing, {}, nothing, nothing) == list(commands.SUBCOMMANDS)


def test_split_reads_every_row_and_suggests():
    for command in commands.COMMANDS:
        assert parsing.split(" ".join(command.key))[0] == command.key
    with pytest.raises(commands.UsageProblem, match="did you mean 'connect'"):
        parsing.split("conect lab.laser")
