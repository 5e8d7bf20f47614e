"""The README's commands are the real ones: its test command is what CI runs, its main command is a
real verb, and its Python API example runs as written (paths pointed at a quick demo's output)."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def blocks(lang: str):
    return re.findall(r"```%s\n(.*?)```" % lang, README, flags=re.S)


def test_ci_runs_the_readme_test_command():
    commands = [line.split("#")[0].strip() for line in blocks("bash")[0].splitlines()]
    assert "python3 -m pytest -q" in commands
    assert "python3 -m pytest -q" in (ROOT / ".ci" / "run").read_text()
    assert any(c.startswith("edgevid demo") for c in commands)


def test_python_api_example_runs(quick_demo, tmp_path, capsys):
    out, _ = quick_demo
    code = blocks("python")[0]
    assert '"demo-out/bundle"' in code and '"clip.mp4"' in code
    code = code.replace('"demo-out/bundle"', repr(str(out / "bundle")))
    code = code.replace('"clip.mp4"', repr(str(out / "data" / "stream.avi")))
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    frames = [line for line in printed if line.split()[0].isdigit()]
    assert frames and all(line.split()[3] in ("fine", "coarse") for line in frames)
    fine_rate, session = printed[-1].split(" ", 1)
    assert 0.0 <= float(fine_rate) <= 1.0 and "'backend': 'ort'" in session  # what ran, never "auto"


def test_readme_says_what_works_today_and_what_an_install_costs():
    intro = README.split("What works today")[0]
    # the TensorRT side has not run on a GPU: the intro must say so wherever it names TensorRT
    assert "TensorRT" not in intro or "not yet run on a GPU" in intro
    assert "planned" in README and "GPU/TensorRT tests skip" not in README
    install = README.split("## Install")[1].split("\n## ")[0]
    assert 'pip install -e ".[cpu,video]"' in install and 'pip install -e ".[cpu,jetson]"' in install
    assert "--system-site-packages" in install and "GB" in install and "MB" in install
    assert "../shared" not in README and "docs/cli.md" in README and "docs/models.md" in README
