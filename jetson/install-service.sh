#!/usr/bin/env bash
# Install jetson/edgevid.service.in as a systemd service that runs a bundle at boot (jetson/README.md).
#
#   jetson/install-service.sh BUNDLE SOURCE [--precision fp16|int8|fp32] [--venv DIR] [--user NAME] [--print]
#
# SOURCE is any edgevid --source (csi://0, /dev/video0, a GStreamer pipeline ending in appsink); --precision
# is the one the engines were built at (default fp16, as jetson/check-device.sh builds). --print writes the
# unit to stdout instead of installing it (no sudo needed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=$HOME/edgevid-venv
user=$(id -un)
print=no
precision=fp16
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --venv) venv=${2:?--venv needs a folder}; shift 2 ;;
    --user) user=${2:?--user needs a name}; shift 2 ;;
    --precision) precision=${2:?--precision needs fp16, int8 or fp32}; shift 2 ;;
    --print) print=yes; shift ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
[ ${#args[@]} -eq 2 ] || { echo "install-service: needs BUNDLE and SOURCE (see --help)" >&2; exit 2; }
case $precision in fp16|int8|fp32) ;; *) echo "install-service: --precision is fp16, int8 or fp32" >&2; exit 2 ;; esac
bundle=$(cd "${args[0]}" 2>/dev/null && pwd) || { echo "install-service: no bundle folder ${args[0]}" >&2; exit 2; }
[ -f "$bundle/bundle.json" ] || { echo "install-service: $bundle has no bundle.json" >&2; exit 2; }
source_spec=${args[1]}
# systemd splits ExecStart on spaces: a pipeline (spaces, '!') is quoted, with its quotes and backslashes escaped
case $source_spec in
  *[[:space:]]*) quoted="\"$(printf '%s' "$source_spec" | sed 's/[\\"]/\\&/g')\"" ;;
  *) quoted=$source_spec ;;
esac
# systemd expands % specifiers and $VARIABLES in ExecStart: double them to keep them literal
quoted=$(printf '%s' "$quoted" | sed -e 's/%/%%/g' -e 's/\$/$$/g')
# sed replacement text: escape the delimiter, & and backslashes
esc() { printf '%s' "$1" | sed 's/[|&\\]/\\&/g'; }
unit=$(sed -e "s|@BUNDLE@|$(esc "$bundle")|g" -e "s|@SOURCE@|$(esc "$quoted")|g" -e "s|@VENV@|$(esc "$venv")|g" \
           -e "s|@USER@|$(esc "$user")|g" -e "s|@WORKDIR@|$(esc "$bundle")|g" -e "s|@PRECISION@|$precision|g" \
           "$here/edgevid.service.in")
if [ "$print" = yes ]; then
  printf '%s\n' "$unit"
  exit 0
fi
[ -x "$venv/bin/edgevid" ] || { echo "install-service: no $venv/bin/edgevid: run jetson/install.sh first" >&2; exit 2; }
printf '%s\n' "$unit" | sudo tee /etc/systemd/system/edgevid.service > /dev/null
sudo systemctl daemon-reload
sudo systemctl enable --now edgevid.service
echo "install-service: edgevid.service enabled; follow it with: journalctl -u edgevid -f -o cat" >&2
