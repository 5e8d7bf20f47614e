"""Thread layout of a stream's sessions (threads.py): per role, from the cores and the family's stages."""
from __future__ import annotations

import pytest

from edgevid.errors import ConfigError
from edgevid.runtime import threads as th
from edgevid.families import liteeval
from edgevid.runtime.gated import GatedStages

LITEEVAL = liteeval.FAMILY.roles


ROLES = ("a", "b")  # the family's roles (families table); the stages class only declares its THREADS


class Plain:
    pass


class Declares:
    THREADS = {"pipelined": {"b": th.ALL}, "sequential": {"a": 1}}


def test_defaults_every_core_spinning_during_runs_sequential_one_thread_never_spinning_pipelined():
    assert th.session_options(Plain, ROLES, pipelined=False, cores=4) == {r: {"threads": 4, "spin": "run"} for r in "ab"}
    assert th.session_options(Plain, ROLES, pipelined=True, cores=4) == {r: {"threads": 1, "spin": "never"} for r in "ab"}


def test_the_stages_declare_their_own_roles():
    assert th.session_options(Declares, ROLES, pipelined=True, cores=2) == {"a": {"threads": 1, "spin": "never"},
                                                                       "b": {"threads": 2, "spin": "never"}}
    assert th.session_options(Declares, ROLES, pipelined=False, cores=2) == {"a": {"threads": 1, "spin": "run"},
                                                                        "b": {"threads": 2, "spin": "run"}}


@pytest.mark.parametrize("pipelined", [False, True])
def test_the_callers_number_wins(pipelined):
    options = th.session_options(Declares, ROLES, pipelined, threads=3, cores=2)
    assert {r: o["threads"] for r, o in options.items()} == {"a": 3, "b": 3}


def test_a_threads_map_naming_what_the_stages_lack_is_a_config_error():
    class Typo:
        THREADS = {"pipelined": {"fine": 2}}

    class BadMode:
        THREADS = {"live": {"a": 2}}

    for stages in (Typo, BadMode):
        with pytest.raises(ConfigError, match="THREADS"):
            th.session_options(stages, ("a",), pipelined=True)


def test_liteeval_fine_cnn_takes_every_core_pipelined_steps_one_thread_sequential():
    pipelined = th.session_options(GatedStages, LITEEVAL, pipelined=True, cores=2)
    assert pipelined["fine_cnn"]["threads"] == 2
    assert {pipelined[r]["threads"] for r in ("coarse_cnn", "coarse_step", "fine_step")} == {1}
    sequential = th.session_options(GatedStages, LITEEVAL, pipelined=False, cores=2)
    assert {r: o["threads"] for r, o in sequential.items()} == {"coarse_cnn": 2, "coarse_step": 1, "fine_cnn": 2,
                                                                 "fine_step": 1}


def test_usable_cores_is_the_affinity_mask(monkeypatch):
    monkeypatch.setattr(th.os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    assert th.usable_cores() == 3
