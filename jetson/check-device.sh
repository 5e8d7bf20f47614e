#!/usr/bin/env bash
# The device check, in one command on a Jetson (jetson/README.md): build TensorRT engines for a bundle,
# verify them against ONNX Runtime, stream through the TensorRT pipeline while tegrastats records, and write
# ONE file to send back: edgevid-check-<host>-<time>.tar.gz (report.json + every log).
#
#   jetson/check-device.sh [BUNDLE] [--source S] [--frames N] [--precision fp16|int8|fp32] [--out DIR]
#
# BUNDLE defaults to the tiny LiteEval bundle committed in tests/fixtures (no torch needed); it is copied, so
# the engines are built into the copy. --source defaults to the synthetic stream (csi://0, /dev/video0 or a
# GStreamer pipeline work too). Exit status: 0 when every step passed, 1 when one failed (the report says
# which), 2 when this is not a Jetson or the arguments are wrong.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bundle=$here/../tests/fixtures/bundles/liteeval-mixed
source_spec=synthetic
frames=300
precision=fp16
out=
edgevid=${EDGEVID:-edgevid}
py=${PYTHON:-python3}
release=${NV_TEGRA_RELEASE:-/etc/nv_tegra_release}   # overridable only so that the tests can fake a Jetson

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
fail() { echo "check-device: $1" >&2; [ -n "${2:-}" ] && echo "  $2" >&2; exit 2; }

parse_args() {
  while [ $# -gt 0 ]; do
    case $1 in
      --source) source_spec=${2:?--source needs a value}; shift 2 ;;
      --frames) frames=${2:?--frames needs a value}; shift 2 ;;
      --precision) precision=${2:?--precision needs a value}; shift 2 ;;
      --out) out=${2:?--out needs a folder}; shift 2 ;;
      -h|--help) usage ;;
      -*) fail "unknown option $1" "see: $0 --help" ;;
      *) bundle=$1; shift ;;
    esac
  done
}

# A Jetson has an L4T release file and tegrastats; anything else would measure the wrong machine.
require_jetson() {
  [ -r "$release" ] || fail "this is not a Jetson: $release is missing" \
    "run this script on the Jetson itself (JetPack 5.1 or 6.x), after jetson/install.sh"
  command -v tegrastats > /dev/null || fail "tegrastats is not on PATH although this looks like a Jetson" \
    "it ships with L4T (/usr/bin/tegrastats); reinstall nvidia-l4t-tools"
  command -v "$edgevid" > /dev/null || fail "'$edgevid' is not on PATH" \
    "activate the venv made by jetson/install.sh (source ~/edgevid-venv/bin/activate) or set EDGEVID"
  [ -f "$bundle/bundle.json" ] || fail "no bundle at $bundle (bundle.json missing)" "pass a bundle folder"
}

# Record what the device is: model, L4T/JetPack, power mode, clocks, library versions.
describe_device() {
  {
    echo "model: $(tr -d '\0' < /proc/device-tree/model 2>/dev/null || echo unknown)"
    echo "l4t: $(head -1 "$release")"
    # shellcheck disable=SC2016  # ${Version} is dpkg-query's field, not a shell variable
    echo "jetpack: $(dpkg-query -W -f='${Version}' nvidia-jetpack 2>/dev/null || echo unknown)"
    echo "kernel: $(uname -r)"
    echo "nvpmodel: $(nvpmodel -q 2>/dev/null | tr '\n' ' ' || echo unavailable)"
    echo "jetson_clocks: $(sudo -n jetson_clocks --show 2>/dev/null | grep -m3 -E 'GPU|EMC|CPU' | tr '\n' ' ' || echo 'needs sudo')"
    "$py" - <<'EOF'
import platform
print("python: " + platform.python_version())
for name in ("tensorrt", "pycuda", "onnxruntime", "numpy", "cv2", "edgevid"):
    try:
        module = __import__(name)
        print("%s: %s" % (name, getattr(module, "__version__", "?")))
    except Exception as e:  # a missing or broken package is part of the answer
        print("%s: not importable (%s)" % (name, e))
try:
    import cv2
    line = [ln for ln in cv2.getBuildInformation().splitlines() if "GStreamer" in ln]
    print("cv2 gstreamer: " + (line[0].split(":", 1)[1].strip() if line else "not listed"))
except Exception:
    pass
EOF
    free -m | sed -n 2p | awk '{print "memory_mb: " $2}'
  } > "$out/device.txt" 2>&1
}

# run_step NAME COMMAND...: run it with its output in NAME.log, tegrastats in NAME.tegrastats, status in steps.tsv
run_step() {
  local name=$1 rc=0 start tpid
  shift
  start=$(date +%s)
  tegrastats --interval 500 > "$out/$name.tegrastats" 2>/dev/null &
  tpid=$!
  echo "check-device: $name: $*" >&2
  "$@" > "$out/$name.log" 2>&1 || rc=$?
  kill "$tpid" 2>/dev/null || true
  wait "$tpid" 2>/dev/null || true
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - start ))" "$*" >> "$out/steps.tsv"
  [ "$rc" -eq 0 ] || echo "check-device: $name FAILED (exit $rc): see $out/$name.log" >&2
  return 0
}

write_report() {
  "$py" - "$out" <<'EOF'
import json, os, subprocess, sys
out = sys.argv[1]
steps = []
for line in open(os.path.join(out, "steps.tsv")):
    name, rc, seconds, command = line.rstrip("\n").split("\t", 3)
    log = open(os.path.join(out, name + ".log"), errors="replace").read()
    telemetry = subprocess.run([sys.executable, "-m", "edgevid.telemetry", os.path.join(out, name + ".tegrastats")],
                               capture_output=True, text=True)
    steps.append({"step": name, "exit": int(rc), "seconds": int(seconds), "command": command,
                  "log_tail": log[-4000:],
                  "tegrastats": json.loads(telemetry.stdout) if telemetry.returncode == 0 else telemetry.stderr[-2000:]})
run = [json.loads(ln) for ln in open(os.path.join(out, "run.log"), errors="replace") if ln.startswith("{")]
device = dict(ln.split(": ", 1) for ln in open(os.path.join(out, "device.txt")).read().splitlines() if ": " in ln)
report = {"device": device, "steps": steps, "passed": all(s["exit"] == 0 for s in steps),
          "predictions": len(run), "last_predictions": run[-5:]}
with open(os.path.join(out, "report.json"), "w") as f:
    json.dump(report, f, indent=1)
EOF
}

main() {
  parse_args "$@"
  require_jetson
  out=${out:-edgevid-check-$(hostname)-$(date +%Y%m%d-%H%M%S)}
  mkdir -p "$out"
  rm -f "$out/steps.tsv"
  cp -r "$bundle" "$out/bundle"
  describe_device
  run_step build "$edgevid" build "$out/bundle" --precision "$precision"
  run_step verify "$edgevid" verify "$out/bundle" --backend trt
  run_step run "$edgevid" run "$out/bundle" --source "$source_spec" --backend trt \
    --precision "$precision" --json --max-frames "$frames"
  write_report
  rm -rf "$out/bundle"   # the engines are specific to this device; the report is what travels
  tar czf "$out.tar.gz" -C "$(dirname "$out")" "$(basename "$out")"
  echo "check-device: report $out.tar.gz ($out/report.json)" >&2
  "$py" -c 'import json, sys; sys.exit(0 if json.load(open(sys.argv[1]))["passed"] else 1)' "$out/report.json"
}

main "$@"
