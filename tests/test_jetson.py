"""jetson/: the camera strings of its README are sources edgevid accepts, the scripts refuse to run off a
Jetson with a clear message, and the device check, run on a faked Jetson (fake tegrastats and edgevid on
PATH), writes the one report it promises."""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from edgevid.runtime.source import parse_spec

ROOT = Path(__file__).resolve().parents[1]
JETSON = ROOT / "jetson"
SCRIPTS = ["check-device.sh", "install.sh", "install-service.sh"]
ORIN_LINE = ("11-15-2024 08:38:09 RAM 6185/7620MB (lfb 8x2MB) SWAP 851/3810MB (cached 1MB) CPU [15%@729,11%@729,"
             "14%@729,13%@729,11%@729,8%@729] EMC_FREQ 43%@2133 GR3D_FREQ 63%@[621] VDD_IN 12479mW/12479mW")


def readme_sources():
    text = (JETSON / "README.md").read_text()
    return re.findall(r'--source "([^"]+)"', text) + re.findall(r"--source (csi://\d|/dev/video\d)", text)


@pytest.mark.parametrize("spec", readme_sources())
def test_every_source_string_of_the_readme_is_a_source_edgevid_accepts(spec):
    kind, value = parse_spec(spec)
    assert kind in ("gstreamer", "camera"), (kind, spec)
    if kind == "gstreamer":
        assert "appsink drop=1 max-buffers=1" in value


def test_the_readme_covers_csi_and_usb_mjpeg_with_both_decoders():
    specs = " ".join(readme_sources())
    for element in ("nvarguscamerasrc", "csi://0", "nvv4l2decoder mjpeg=1", "jpegdec", "v4l2src"):
        assert element in specs, element


def run(script, *args, env=None, cwd=None):
    return subprocess.run(["bash", str(JETSON / script)] + list(args), capture_output=True, text=True,
                          timeout=120, env=env, cwd=cwd)


@pytest.mark.parametrize("script", ["check-device.sh", "install.sh"])
def test_off_a_jetson_the_scripts_stop_saying_why(script, tmp_path):
    result = run(script, env=dict(os.environ, NV_TEGRA_RELEASE=str(tmp_path / "nv_tegra_release")))
    assert result.returncode == 2
    assert "this is not a Jetson" in result.stderr and "run" in result.stderr


def test_install_refuses_an_l4t_it_does_not_support(tmp_path):
    release = tmp_path / "nv_tegra_release"
    release.write_text("# R32 (release), REVISION: 7.1, GCID: 1, BOARD: t186ref, EABI: aarch64\n")
    result = run("install.sh", env=dict(os.environ, NV_TEGRA_RELEASE=str(release)))
    assert result.returncode == 2 and "L4T R32 is not supported" in result.stderr


def executable(path: Path, body: str) -> None:
    path.write_text("#!%s\n%s" % (sys.executable, body))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def fake_jetson(tmp_path):
    """A PATH with a tegrastats printing a recorded Orin line and an edgevid that answers the three verbs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    executable(bin_dir / "tegrastats", "import time\nwhile True:\n    print(%r, flush=True)\n    time.sleep(0.05)\n"
               % ORIN_LINE)
    executable(bin_dir / "edgevid", textwrap_fake_edgevid())
    release = tmp_path / "nv_tegra_release"
    release.write_text("# R36 (release), REVISION: 4.0, GCID: 1, BOARD: generic, EABI: aarch64\n")
    env = dict(os.environ, PATH="%s:%s" % (bin_dir, os.environ["PATH"]), NV_TEGRA_RELEASE=str(release),
               PYTHON=sys.executable, PYTHONPATH=str(ROOT))
    return tmp_path, env


def textwrap_fake_edgevid():
    return (
        "import json, os, sys, time\n"
        "verb, bundle = sys.argv[1], sys.argv[2]\n"
        "assert os.path.isfile(os.path.join(bundle, 'bundle.json'))\n"
        "time.sleep(0.4)  # long enough for tegrastats to print\n"
        "if verb == 'verify' and os.environ.get('FAKE_VERIFY_FAILS'):\n"
        "    sys.exit('verify: engines disagree')\n"
        "if verb == 'run':\n"
        "    assert sys.argv[sys.argv.index('--backend') + 1] == 'trt' and '--json' in sys.argv\n"
        "    for i in range(3):\n"
        "        print(json.dumps({'frame': i, 'label': 'wave'}))\n"
        "print('log: done', file=sys.stderr)\n")


def test_the_device_check_writes_one_report_on_a_jetson(fake_jetson):
    tmp_path, env = fake_jetson
    result = run("check-device.sh", "--out", "report", "--frames", "3", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with tarfile.open(tmp_path / "report.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"report/report.json", "report/run.log", "report/build.tegrastats"} <= names
    assert not any("bundle/" in n for n in names)  # the engines stay on the device
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["passed"] and report["predictions"] == 3
    assert [s["step"] for s in report["steps"]] == ["build", "verify", "run"]
    run_step = report["steps"][2]
    assert "--backend trt" in run_step["command"] and "--precision fp16" in run_step["command"]
    assert run_step["tegrastats"]["samples"] >= 1 and run_step["tegrastats"]["gpu_load"]["max"] == 63
    assert report["device"]["l4t"].startswith("# R36")


def test_a_failing_step_fails_the_check_and_is_named_in_the_report(fake_jetson):
    tmp_path, env = fake_jetson
    env["FAKE_VERIFY_FAILS"] = "1"
    result = run("check-device.sh", "--out", "report", env=env, cwd=tmp_path)
    assert result.returncode == 1 and "verify FAILED" in result.stderr
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert not report["passed"] and [s["exit"] for s in report["steps"]] == [0, 1, 0]
    assert "engines disagree" in report["steps"][1]["log_tail"]


def test_the_service_unit_runs_the_bundle_and_restarts_on_failure():
    pipeline = "v4l2src device=/dev/video0 ! image/jpeg ! jpegdec ! videoconvert ! appsink drop=1"
    result = run("install-service.sh", str(ROOT / "tests/fixtures/bundles/liteeval-mixed"), pipeline, "--print",
                 "--venv", "/opt/venv")
    assert result.returncode == 0, result.stderr
    unit = result.stdout
    assert ('ExecStart=/opt/venv/bin/edgevid run %s --source "%s" --backend trt --precision fp16 --json'
            % (ROOT / "tests/fixtures/bundles/liteeval-mixed", pipeline)) in unit
    assert "Restart=on-failure" in unit and "WantedBy=multi-user.target" in unit and "@" not in unit.split("[Service]")[1]


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_scripts_are_valid_bash_and_shellcheck_clean(script):
    assert subprocess.run(["bash", "-n", str(JETSON / script)]).returncode == 0
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed")
    result = subprocess.run([shellcheck, str(JETSON / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
