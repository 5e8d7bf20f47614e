"""edgevid.telemetry on real recorded tegrastats lines of AGX Xavier, Orin (AGX, NX, Nano) and Nano
(tests/fixtures/tegrastats/samples.txt: each line with its source), and the reader over a file and a
subprocess that stands in for tegrastats."""
from __future__ import annotations

import os
import stat
import sys
import time
from pathlib import Path

import pytest

from edgevid.errors import TelemetryError
from edgevid.telemetry import Tegrastats, main, parse_line, summarize

FIXTURE = Path(__file__).parent / "fixtures" / "tegrastats" / "samples.txt"


def samples():
    """id -> recorded line."""
    found, current = {}, None
    for line in FIXTURE.read_text().splitlines():
        if line.startswith("# id: "):
            current = line[len("# id: "):]
        elif line and not line.startswith("#"):
            found[current] = line
    return found


LINES = samples()
DEVICE_LINES = [k for k in LINES if not k.startswith("template")]


@pytest.mark.parametrize("name", DEVICE_LINES)
def test_every_recorded_device_line_parses(name):
    s = parse_line(LINES[name])
    assert 0 < s.ram_used_mb <= s.ram_total_mb
    assert len(s.cpu_loads) == len(s.cpu_freqs_mhz) >= 4
    assert s.gpu_load is not None and 0 <= s.gpu_load <= 100
    assert s.temperatures_c and s.rails


def test_agx_xavier_r32_rails_without_unit_and_temperatures_of_the_same_names():
    s = parse_line(LINES["agx-xavier-32gb-r32-root"])
    assert (s.ram_used_mb, s.ram_total_mb, s.swap_used_mb, s.swap_total_mb) == (721, 31927, 0, 15963)
    assert s.cpu_loads == [2, 0, 0, 0, None, None, None, None] and s.cpu_freqs_mhz[:4] == [1190] * 4
    assert (s.emc_load, s.emc_freq_mhz, s.gpu_load, s.gpu_freqs_mhz) == (0, 665, 0, (318,))
    assert s.temperatures_c["GPU"] == 37.5 and s.temperatures_c["thermal"] == 36.9
    assert [(r.name, r.now_mw, r.avg_mw) for r in s.rails] == [
        ("GPU", 0, 0), ("CPU", 311, 311), ("SOC", 932, 932), ("CV", 0, 0), ("VDDRQ", 621, 621), ("SYS5V", 1482, 1482)]
    assert s.engines["APE"] == "150" and s.input_power_mw is None  # AGX Xavier has no input rail


def test_agx_xavier_without_root_and_without_swap():
    s = parse_line(LINES["agx-xavier-16gb-r32-nonroot"])
    assert (s.emc_load, s.emc_freq_mhz, s.gpu_load, s.gpu_freqs_mhz) == (0, None, 0, ())
    assert s.rail("GPU").now_mw == 463 and s.temperatures_c["PMIC"] == 100.0
    noswap = parse_line(LINES["agx-xavier-16gb-r32-noswap"])
    assert noswap.swap_used_mb is None and noswap.ram_used_mb == 1903


def test_agx_orin_r36_runs_of_spaces_per_gpc_clocks_and_mw_rails():
    s = parse_line(LINES["agx-orin-32gb-r36-root"])
    assert (s.ram_used_mb, s.swap_used_mb) == (29114, 4915) and len(s.cpu_loads) == 12 and s.cpu_loads[5] == 100
    assert (s.gpu_load, s.gpu_freqs_mhz, s.emc_load, s.emc_freq_mhz) == (0, (305, 305), 1, 2133)
    assert s.engines["NVDLA0"] == "off" and s.engines["APE"] == "174"
    assert s.temperatures_c["tj"] == 53.062 and s.rail("VDD_GPU_SOC").now_mw == 3205
    assert s.input_power_mw is None  # VIN_SYS_5V0 is the I/O rail, not the total (jetson_stats #344)


def test_orin_nano_timestamp_load_and_input_power():
    s = parse_line(LINES["orin-nano-8gb-r36-root"])
    assert s.timestamp == "11-15-2024 08:38:09"
    assert (s.gpu_load, s.gpu_freqs_mhz, s.emc_load, s.emc_freq_mhz) == (63, (621,), 43, 2133)
    assert s.input_power_mw == 12479 and s.rail("VDD_SOC").avg_mw == 2817
    loaded = parse_line(LINES["orin-nx-8gb-r36-root-load"])
    assert loaded.engines["NVDEC"] == "40%@115" and loaded.rail("VDD_IN").avg_mw == 15710


def test_agx_orin_r35_offline_sensors_and_two_rails_named_nc():
    s = parse_line(LINES["agx-orin-64gb-r35-root"])
    assert "CV0" not in s.temperatures_c and "GPU" not in s.temperatures_c  # -256C: offline
    assert s.temperatures_c["CPU"] == 44.562 and s.gpu_freqs_mhz == (0, 0)
    assert [r.name for r in s.rails].count("NC") == 2


def test_nano_iram_and_pom_rails():
    s = parse_line(LINES["nano-4gb-r32-root"])
    assert (s.ram_used_mb, s.swap_total_mb, s.cpu_freqs_mhz) == (534, 1982, [204] * 4)
    assert s.input_power_mw == 1022 and s.rail("POM_5V_GPU").now_mw == 0
    decoding = parse_line(LINES["nano-r32-decoding"])
    assert decoding.rail("POM_5V_IN").avg_mw == 1483 and decoding.swap_used_mb is None


def test_jetpack7_three_value_rails_and_two_value_temperatures():
    s = parse_line(LINES["agx-orin-jp7-r39"])
    assert s.rail("VDD_GPU_SOC").peak_mw == 5139 and s.temperatures_c["cpu"] == 52.968
    assert s.gpu_freqs_mhz == (1300, 1300) and s.engines["NVENC0"] == "off"


@pytest.mark.parametrize("line, why", [
    (LINES["template-orin-r35-emulator"], "CPU core"),
    ("", "empty"),
    ("CPU [1%@100] GR3D_FREQ 0%", "no RAM field"),
    ("RAM 10/20MB GR3D_FREQ high", "GR3D_FREQ 'high'"),
    ("RAM 10/20MB (lfb 3x2MB GR3D_FREQ 0%", "never closed"),
    ("RAM 10/20MB what?", "cannot read 'what?'"),
])
def test_a_malformed_line_is_a_clear_error(line, why):
    with pytest.raises(TelemetryError, match="tegrastats") as info:
        parse_line(line)
    assert why in str(info.value)


def test_the_reader_skips_and_counts_malformed_lines_of_a_log(tmp_path, capsys):
    log = tmp_path / "tegrastats.log"
    log.write_text("\n".join([LINES["orin-nano-8gb-r36-root"], "garbage", "", LINES["agx-orin-jp7-r39"]]) + "\n")
    reader = Tegrastats(path=log)
    got = list(reader)
    assert [s.ram_total_mb for s in got] == [7620, 62817] and reader.skipped == 1
    summary = summarize(got, reader.skipped)
    assert summary["samples"] == 2 and summary["skipped"] == 1 and summary["gpu_load"]["max"] == 63
    assert summary["input_power_mw"]["max"] == 12479
    assert main([str(log)]) == 0 and '"samples": 2' in capsys.readouterr().out


def test_a_missing_log_or_tegrastats_is_a_clear_error(tmp_path):
    with pytest.raises(TelemetryError, match="cannot read tegrastats log"):
        list(Tegrastats(path=tmp_path / "none.log"))
    with pytest.raises(TelemetryError, match="was not found.*comes with L4T"):
        list(Tegrastats(command="no-such-tegrastats-here"))
    with pytest.raises(TelemetryError, match="interval"):
        Tegrastats(interval_ms=0)


@pytest.fixture
def fake_tegrastats(tmp_path):
    """An executable that prints a recorded line every 50 ms forever, as tegrastats --interval does."""
    exe = tmp_path / "tegrastats"
    exe.write_text("#!%s\nimport sys, time\nassert sys.argv[1:3] == ['--interval', '50'], sys.argv\n"
                   "while True:\n    print(%r, flush=True)\n    time.sleep(0.05)\n"
                   % (sys.executable, LINES["orin-nano-8gb-r36-root"]))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return str(exe)


def test_the_subprocess_reader_records_and_stops_cleanly(fake_tegrastats):
    reader = Tegrastats(interval_ms=50, command=fake_tegrastats).record()
    deadline = time.monotonic() + 10
    while len(reader.samples) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc = reader._proc
    reader.stop()
    assert len(reader.samples) >= 3 and reader.samples[0].gpu_load == 63
    assert proc is not None and proc.poll() is not None  # the subprocess is gone
    assert not reader._thread.is_alive()


def test_tegrastats_ending_by_itself_is_an_error_saying_so(tmp_path):
    exe = tmp_path / "tegrastats"
    exe.write_text("#!%s\nimport sys\nprint(%r)\nsys.exit('tegrastats: permission denied')\n"
                   % (sys.executable, LINES["nano-4gb-r32-root"]))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    got = []
    with pytest.raises(TelemetryError, match="exit status 1.*permission denied"):
        for sample in Tegrastats(interval_ms=50, command=str(exe)):
            got.append(sample)
    assert len(got) == 1
    recording = Tegrastats(interval_ms=50, command=str(exe)).record()
    recording._thread.join(timeout=10)
    assert len(recording.samples) == 1 and "permission denied" in str(recording.error)


def test_iterating_and_leaving_the_context_stops_the_subprocess(fake_tegrastats):
    with Tegrastats(interval_ms=50, command=fake_tegrastats) as reader:
        stream = iter(reader)
        first = next(stream)
        proc = reader._proc
        assert proc.poll() is None  # still running while the caller reads
    assert first.ram_used_mb == 6185 and proc.poll() is not None


def test_telemetry_imports_nothing_heavy():
    import subprocess

    code = "import sys, edgevid.telemetry; print(sorted(m for m in ('numpy', 'cv2', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1]))).stdout
    assert out.strip() == "[]"
