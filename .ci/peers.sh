#!/usr/bin/env bash
# Installs the real peers that Vigil is tested and benchmarked against, without
# touching the system's packages: Prometheus 3 (with promtool), Alertmanager and
# VictoriaMetrics, taken from Debian's unstable suite and unpacked into a private
# prefix. Debian's stable suite only has Prometheus 2.42, whose PromQL differs
# from Prometheus 3 (for example in range-window boundaries).
#
# (Vigil keeps this copy of ../shared/peers/install.sh so a clean clone can install peers.)
# Usage: .ci/peers.sh [PREFIX]      (default: $VIGIL_PEERS_DIR or ~/.cache/vigil-peers)
# Prints the folder holding the binaries as its last line; put it on PATH:
#   export PATH="$(../shared/peers/install.sh | tail -n1):$PATH"
# Needs root-free apt (apt-get download), dpkg-deb, and the machine's Debian mirror.
set -euo pipefail

prefix=${1:-${VIGIL_PEERS_DIR:-$HOME/.cache/vigil-peers}}
bin="$prefix/usr/bin"
# Preferred versions; when the suite has moved on, its current ones are taken instead.
want=(prometheus=3.5.3+ds1-6 promtool=3.5.3+ds1-6 prometheus-alertmanager=0.33.1-5 victoria-metrics=1.145.0+ds1-2)

if [ -x "$bin/prometheus" ] && [ -x "$bin/promtool" ] && [ -x "$bin/prometheus-alertmanager" ] && [ -x "$bin/victoria-metrics" ]; then
  echo "peers already installed:" >&2
  "$bin/prometheus" --version 2>&1 | head -n1 >&2
  echo "$bin"
  exit 0
fi

mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  mirror=$(awk '/^URIs:/ {for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) {print $i; exit}}' "$f")
  [ -n "$mirror" ] && break
done
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror=$(awk '$1 == "deb" && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list)
fi
[ -n "$mirror" ] || { echo "install.sh: no Debian mirror found in the apt sources" >&2; exit 1; }
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/debs" "$prefix"
cat > "$work/unstable.sources" <<SRC
Types: deb
URIs: $mirror
Suites: sid
Components: main
Signed-By: $keyring
SRC
apt_opts=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$work/parts"
          -o "Dir::State::Lists=$work/lists" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
mkdir -p "$work/parts" && cp "$work/unstable.sources" "$work/parts/"
apt-get "${apt_opts[@]}" update -qq >&2

cd "$work/debs"
for pkg in "${want[@]}"; do
  name=${pkg%%=*}
  if ! apt-get "${apt_opts[@]}" download -qq "$pkg" >&2 2>/dev/null; then
    echo "install.sh: $pkg is gone from the suite; taking its current version" >&2
    apt-get "${apt_opts[@]}" download -qq "$name" >&2
  fi
done
for deb in ./*.deb; do dpkg-deb -x "$deb" "$prefix"; done

for b in prometheus promtool prometheus-alertmanager victoria-metrics; do
  [ -x "$bin/$b" ] || { echo "install.sh: $b missing after unpacking" >&2; exit 1; }
done
"$bin/prometheus" --version 2>&1 | head -n1 >&2
"$bin/prometheus-alertmanager" --version 2>&1 | head -n1 >&2
echo "$bin"
