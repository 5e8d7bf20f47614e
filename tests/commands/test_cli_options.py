"""Options every verb shares (--debug, -v, -q) work before and after the verb, and --debug keeps the
error's own exit code while it shows the traceback."""
from __future__ import annotations

import pytest

from edgevid.cli import build_parser
from edgevid.errors import ConfigError


@pytest.mark.parametrize("argv", [["--debug", "info", "NOPE"], ["info", "NOPE", "--debug"]])
def test_debug_shows_the_traceback_and_keeps_the_exit_code(edgevid_cli, tmp_path, capsys, argv):
    argv = [str(tmp_path / a) if a == "NOPE" else a for a in argv]
    code = edgevid_cli(argv)
    err = capsys.readouterr().err
    assert code == ConfigError.exit_code == 2
    assert "Traceback (most recent call last)" in err and "ConfigError" in err
    assert "edgevid info: error:" in err  # the one-line message still ends the output


def test_without_debug_no_traceback(edgevid_cli, tmp_path, capsys):
    assert edgevid_cli(["info", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "edgevid info: error:" in err


@pytest.mark.parametrize("argv,verbose,quiet,debug", [
    (["info", "x"], None, None, None),
    (["-v", "info", "x"], 1, None, None),
    (["info", "x", "-vv"], 2, None, None),
    (["info", "-q", "x"], None, True, None),
    (["-q", "info", "x", "--debug"], None, True, True),
])
def test_shared_options_in_either_position(argv, verbose, quiet, debug):
    args = build_parser().parse_args(argv)
    assert getattr(args, "verbose", None) == verbose
    assert getattr(args, "quiet", None) == quiet
    assert getattr(args, "debug", None) == debug


def test_every_verb_accepts_the_shared_options():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "verb")
    for name, p in sub.choices.items():
        flags = {s for a in p._actions for s in a.option_strings}
        assert {"--debug", "-v", "-q"} <= flags, name


def test_a_closed_stdout_is_not_a_traceback(tmp_path):
    """'edgevid info B --json | head -1': the reader leaves early; edgevid stops without a traceback."""
    import subprocess
    import sys
    from pathlib import Path

    bundle = Path(__file__).resolve().parents[1] / "fixtures" / "schema1" / "liteeval"
    proc = subprocess.Popen([sys.executable, "-m", "edgevid", "info", str(bundle), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # closed before edgevid writes a byte
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert proc.returncode == 141
