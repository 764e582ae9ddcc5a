#!/usr/bin/env bash
# Installs the Debian packages streamkit needs, only those missing, when we may (root or sudo).
#   runtime: PortAudio for the microphone, espeak-ng (phonemes for the Piper voice; GPL, used
#            only as a separate process).
#   dev:     + PulseAudio + ALSA pulse plugin (real audio-server test), Xvfb + ImageMagick
#              (desktop window screenshot test),
#              Chromium (browser client test).
#              HAProxy + Redis (the cluster test: tests/cluster, bench/cluster.py).
#              prometheus (its promtool checks GET /metrics: tests/transport/test_prometheus.py).
set -euo pipefail
want=(libportaudio2 espeak-ng)
if [ "${1:-runtime}" = dev ]; then
  want+=(flite pulseaudio pulseaudio-utils libasound2-plugins xvfb xauth imagemagick chromium fonts-dejavu-core
         haproxy redis-server prometheus)
fi
missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "streamkit: please install these system packages yourself: ${missing[*]}" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "streamkit: not root and no sudo; please install: ${missing[*]}" >&2; exit 0; fi
fi
echo "streamkit: installing system packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
