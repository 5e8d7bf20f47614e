"""Jetson telemetry from ``tegrastats``: one line in, one :class:`TegraSample` out.

Pure parsing, standard library only, Python 3.8 (it runs on JetPack 5). The format differs by module and
L4T release (tests/fixtures/tegrastats/README.md lists the recorded lines the tests use):

- an optional ``MM-DD-YYYY HH:MM:SS`` timestamp (R35 and later);
- ``RAM used/totalMB (lfb ...)``, ``SWAP used/totalMB (cached NMB)`` (absent without swap), ``IRAM`` (Nano);
- ``CPU [load%@MHz,off,...]``, one entry per core, ``off`` for an offline core;
- ``EMC_FREQ load%[@MHz]`` (absent without root on R36), ``GR3D_FREQ load%[@MHz | @[MHz,MHz,...]]``
  (one clock per GPC on Orin);
- engines ``NAME off|MHz|load%@MHz`` (``APE 150``, ``NVDEC 40%@115``, ``VIC_FREQ 729``), ``MTS fg x% bg y%``;
- temperatures ``name@degreesC`` (``-256C``: the sensor is offline; JetPack 7 prints ``now/maxC``);
- power rails ``NAME now/avg`` in mW: R32 prints no unit (``GPU 463/463``), R35+ prints ``mW``
  (``VDD_GPU_SOC 3205mW/3205mW``), JetPack 7 adds a third value. Rail and temperature names collide
  (``GPU@30.5C`` and ``GPU 463/463`` on Xavier), so fields are told apart by their syntax, never by name.

Malformed lines: :func:`parse_line` raises :class:`TelemetryError` naming the token it could not read.
:class:`Tegrastats` (the streaming reader) skips such lines instead, counts them in ``skipped`` and logs
the first one, so one garbled line does not end a measurement.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Tuple, Union

from .errors import TelemetryError
from .log import get_logger

log = get_logger(__name__)

_TIMESTAMP = re.compile(r"^\s*(\d\d-\d\d-\d{4} \d\d:\d\d:\d\d)\s+")
_USED_TOTAL = re.compile(r"^(\d+)/(\d+)(MB|kB)$")
_CORE = re.compile(r"^(\d+)%(?:@(\d+))?$")
_LOAD = re.compile(r"^(\d+)%(?:@(?:(\d+)|\[([\d,]*)\]))?$")        # 0%  0%@1377  0%@[305,305]
_TEMP = re.compile(r"^([A-Za-z][\w]*)@(-?\d+(?:\.\d+)?)C(?:/-?\d+(?:\.\d+)?C)*$")
_RAIL = re.compile(r"^(\d+)(?:mW)?/(\d+)(?:mW)?(?:/(\d+)(?:mW)?)?$")
_ENGINE = re.compile(r"^(?:off|\d+|\d+%@\d+|\d+%@\[[\d,]*\])$")
_NAME = re.compile(r"^[A-Za-z][\w]*$")
OFFLINE_SENSOR_C = -256.0


@dataclass
class Rail:
    """One power rail: the instant and the running average in mW (``peak_mw`` on JetPack 7 only)."""

    name: str
    now_mw: int
    avg_mw: int
    peak_mw: Optional[int] = None


@dataclass
class TegraSample:
    """One tegrastats line. Fields tegrastats did not print (no root, no swap, older L4T) are None."""

    ram_used_mb: int
    ram_total_mb: int
    timestamp: Optional[str] = None
    swap_used_mb: Optional[int] = None
    swap_total_mb: Optional[int] = None
    cpu_loads: List[Optional[int]] = field(default_factory=list)      # % per core; None = offline core
    cpu_freqs_mhz: List[Optional[int]] = field(default_factory=list)
    gpu_load: Optional[int] = None                                   # GR3D_FREQ %
    gpu_freqs_mhz: Tuple[int, ...] = ()                              # one per GPC on Orin; () without root
    emc_load: Optional[int] = None                                   # EMC_FREQ % (memory controller)
    emc_freq_mhz: Optional[int] = None
    temperatures_c: Dict[str, float] = field(default_factory=dict)   # offline sensors (-256C) left out
    rails: List[Rail] = field(default_factory=list)                  # in printed order; names may repeat (NC)
    engines: Dict[str, str] = field(default_factory=dict)            # APE, NVDEC, VIC_FREQ, ...: as printed

    def rail(self, name: str) -> Optional[Rail]:
        """The first rail called ``name`` (AGX Orin prints two rails named NC)."""
        return next((r for r in self.rails if r.name == name), None)

    @property
    def input_power_mw(self) -> Optional[int]:
        """Board input power where a rail measures it: VDD_IN (Xavier NX, Orin NX/Nano) or POM_5V_IN (Nano).
        AGX Xavier and AGX Orin have no such rail (their rails are parts, VIN_SYS_5V0 is the I/O rail): None."""
        rail = self.rail("VDD_IN") or self.rail("POM_5V_IN")
        return rail.now_mw if rail else None

    def as_dict(self) -> dict:
        d = dict(vars(self))
        d["rails"] = [dict(vars(r)) for r in self.rails]
        d["gpu_freqs_mhz"] = list(self.gpu_freqs_mhz)
        return d


def parse_line(line: str) -> TegraSample:
    """Parse one tegrastats line; TelemetryError names what could not be read."""
    text = line.strip()
    if not text:
        raise TelemetryError("empty tegrastats line", None, "pass one line of tegrastats output")
    stamp = _TIMESTAMP.match(text)
    tokens = (text[stamp.end():] if stamp else text).split()
    values: dict = {"timestamp": stamp.group(1) if stamp else None}
    i = 0
    while i < len(tokens):
        i = _field(tokens, i, values, text)
    if "ram_used_mb" not in values:
        raise _malformed(text, "it has no RAM field", "every tegrastats line starts with RAM used/totalMB")
    return TegraSample(**values)


def _field(tokens: List[str], i: int, values: dict, text: str) -> int:
    """Read the field at tokens[i] into ``values``; return the index of the next field."""
    token, nxt = tokens[i], tokens[i + 1] if i + 1 < len(tokens) else ""
    if token in ("RAM", "SWAP", "IRAM"):
        return _memory(tokens, i, values, text)
    if token == "CPU" and nxt.startswith("["):
        values["cpu_loads"], values["cpu_freqs_mhz"] = _cores(nxt, text)
        return i + 2
    if token == "MTS":          # "MTS fg 0% bg 0%" (Xavier, TX2 on R32): not a measure we use
        return i + 5
    if token in ("GR3D_FREQ", "EMC_FREQ"):
        load, freqs = _load(nxt, token, text)
        if token == "GR3D_FREQ":
            values["gpu_load"], values["gpu_freqs_mhz"] = load, freqs
        else:
            values["emc_load"], values["emc_freq_mhz"] = load, (freqs[0] if freqs else None)
        return i + 2
    temp = _TEMP.match(token)
    if temp:
        if float(temp.group(2)) != OFFLINE_SENSOR_C:
            values.setdefault("temperatures_c", {})[temp.group(1)] = float(temp.group(2))
        return i + 1
    if _NAME.match(token) and _RAIL.match(nxt):
        now, avg, peak = _RAIL.match(nxt).groups()
        values.setdefault("rails", []).append(Rail(token, int(now), int(avg), int(peak) if peak else None))
        return i + 2
    if _NAME.match(token) and _ENGINE.match(nxt):
        values.setdefault("engines", {})[token] = nxt
        return i + 2
    raise _malformed(text, "cannot read '%s'" % " ".join(tokens[i:i + 2]), "no known tegrastats field has that form")


def _memory(tokens: List[str], i: int, values: dict, text: str) -> int:
    name = tokens[i]
    nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
    # IRAM glues its "(lfb ...)" to the value: "0/252kB(lfb"
    value, paren, _ = nxt.partition("(")
    m = _USED_TOTAL.match(value)
    if not m:
        raise _malformed(text, "cannot read %s '%s'" % (name, nxt), "expected used/totalMB")
    if name != "IRAM":  # IRAM (Nano's internal RAM, kB) is read but not kept
        key = name.lower()
        values[key + "_used_mb"], values[key + "_total_mb"] = int(m.group(1)), int(m.group(2))
    i += 2
    if paren and ")" in nxt:
        return i
    if paren or (i < len(tokens) and tokens[i].startswith("(")):  # skip the "(lfb 3x2MB)" group
        while i < len(tokens) and ")" not in tokens[i]:
            i += 1
        if i == len(tokens):
            raise _malformed(text, "the '(' after %s is never closed" % name, "expected e.g. (lfb 3x2MB)")
        i += 1
    return i


def _cores(token: str, text: str) -> Tuple[List[Optional[int]], List[Optional[int]]]:
    if not token.endswith("]"):
        raise _malformed(text, "cannot read CPU '%s'" % token, "expected CPU [load%@MHz,...]")
    loads, freqs = [], []
    for entry in token[1:-1].split(","):
        if entry == "off":
            loads.append(None)
            freqs.append(None)
            continue
        m = _CORE.match(entry)
        if not m:
            raise _malformed(text, "cannot read the CPU core '%s'" % entry, "expected load%@MHz or off")
        loads.append(int(m.group(1)))
        freqs.append(int(m.group(2)) if m.group(2) else None)
    return loads, freqs


def _load(token: str, name: str, text: str) -> Tuple[int, Tuple[int, ...]]:
    m = _LOAD.match(token)
    if not m:
        raise _malformed(text, "cannot read %s '%s'" % (name, token), "expected load%, load%@MHz or load%@[MHz,...]")
    if m.group(2):
        return int(m.group(1)), (int(m.group(2)),)
    return int(m.group(1)), tuple(int(f) for f in (m.group(3) or "").split(",") if f)


def _malformed(text: str, why: str, fix: str) -> TelemetryError:
    shown = text if len(text) <= 120 else text[:117] + "..."
    return TelemetryError("malformed tegrastats line '%s'" % shown, why, fix)


class Tegrastats:
    """Samples from ``tegrastats --interval MS`` running in a subprocess, or from a recorded file.

    ``for sample in reader`` yields :class:`TegraSample` until ``stop()`` (from any thread) or the end of
    the file; malformed lines are skipped and counted in ``skipped``; tegrastats ending by itself with an
    error is a TelemetryError. As a context manager it stops the
    subprocess on exit. ``record()`` collects samples in a thread while other work runs.
    """

    def __init__(self, interval_ms: int = 1000, path: Union[str, Path, None] = None, command: str = "tegrastats"):
        if interval_ms < 1:
            raise TelemetryError("bad tegrastats interval %r" % interval_ms, "it is in milliseconds",
                                 "pass e.g. interval_ms=1000")
        self.interval_ms, self.path, self.command = interval_ms, path, command
        self.skipped = 0
        self.samples: List[TegraSample] = []
        self.error: Optional[TelemetryError] = None
        self._proc: Optional[subprocess.Popen] = None
        self._stopped = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _lines(self) -> Iterable[str]:
        if self.path is not None:
            try:
                with open(self.path, encoding="utf-8", errors="replace") as f:
                    yield from f
            except OSError as e:
                raise TelemetryError("cannot read tegrastats log %s" % self.path, str(e),
                                     "record one with: tegrastats --interval 1000 --logfile FILE") from e
            return
        exe = shutil.which(self.command)
        if exe is None:
            raise TelemetryError("'%s' was not found" % self.command, "tegrastats comes with L4T on a Jetson",
                                 "run this on the Jetson, or read a recorded log with Tegrastats(path=...)")
        proc = self._proc = subprocess.Popen([exe, "--interval", str(self.interval_ms)], stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, universal_newlines=True, bufsize=1)
        yield from proc.stdout
        status = proc.wait()
        if status != 0 and not self._stopped.is_set():  # it ended by itself: say so rather than yield nothing
            raise TelemetryError("tegrastats ended with exit status %d" % status,
                                 (proc.stderr.read().strip() if proc.stderr else "") or "it printed no error",
                                 "run 'tegrastats --interval %d' by hand to see why" % self.interval_ms)

    def __iter__(self) -> Iterator[TegraSample]:
        try:
            for line in self._lines():
                if self._stopped.is_set():
                    break
                if not line.strip():
                    continue
                try:
                    yield parse_line(line)
                except TelemetryError as e:
                    self.skipped += 1
                    if self.skipped == 1:
                        log.warning("skipping malformed tegrastats output (counted in skipped): %s", e)
        finally:
            self.stop()

    def stop(self) -> None:
        """End the subprocess (terminate, then kill if it does not exit) and the recording thread."""
        self._stopped.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        # the recording thread reads the pipe until it ends: join it before closing the pipe under it
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if proc is not None:
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()

    def record(self) -> "Tegrastats":
        """Collect samples into ``self.samples`` in a background thread until ``stop()``. If tegrastats
        fails, the thread ends and ``self.error`` holds the TelemetryError (a thread cannot raise to you)."""
        def collect():
            try:
                for sample in self:
                    self.samples.append(sample)
            except TelemetryError as e:
                self.error = e
                log.warning("tegrastats recording ended: %s", e)

        self._thread = threading.Thread(target=collect, name="tegrastats", daemon=True)
        self._thread.start()
        return self

    def __enter__(self) -> "Tegrastats":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def summarize(samples: List[TegraSample], skipped: int = 0) -> dict:
    """Peaks and means over a run: what a device report needs (RAM, GPU/EMC load, temperatures, rails)."""
    def mean(xs):
        xs = [x for x in xs if x is not None]
        return round(sum(xs) / len(xs), 1) if xs else None

    def peak(xs):
        xs = [x for x in xs if x is not None]
        return max(xs) if xs else None

    rails: Dict[str, List[int]] = {}
    temps: Dict[str, List[float]] = {}
    for s in samples:
        for r in s.rails:
            rails.setdefault(r.name, []).append(r.now_mw)
        for k, v in s.temperatures_c.items():
            temps.setdefault(k, []).append(v)
    return {
        "samples": len(samples), "skipped": skipped,
        "ram_used_mb": {"max": peak(s.ram_used_mb for s in samples), "total": peak(s.ram_total_mb for s in samples)},
        "gpu_load": {"mean": mean(s.gpu_load for s in samples), "max": peak(s.gpu_load for s in samples)},
        "emc_load": {"mean": mean(s.emc_load for s in samples), "max": peak(s.emc_load for s in samples)},
        "temperatures_c_max": {k: max(v) for k, v in sorted(temps.items())},
        "rails_mw": {k: {"mean": mean(v), "max": max(v)} for k, v in sorted(rails.items())},
        "input_power_mw": {"mean": mean(s.input_power_mw for s in samples),
                           "max": peak(s.input_power_mw for s in samples)},
    }


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m edgevid.telemetry LOG`` prints the summary of a recorded tegrastats log as JSON."""
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m edgevid.telemetry", description=main.__doc__)
    p.add_argument("log", type=Path, help="tegrastats output, one line per sample")
    args = p.parse_args(argv)
    reader = Tegrastats(path=args.log)
    samples = list(reader)
    print(json.dumps(summarize(samples, reader.skipped), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
