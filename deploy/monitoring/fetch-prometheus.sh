#!/bin/sh
# Puts Debian's `prometheus` and `promtool` into DEST/bin (default .tools/prometheus), without root:
# `apt-get download` fetches the package (checked against the signed package lists), `dpkg-deb -x`
# unpacks it. Both binaries are static Go programs, so nothing else is installed.
#
# Needs a Debian-family machine (apt-get, dpkg-deb) that reaches its configured mirror. It uses the
# machine's package lists when they name a version the mirror still serves; otherwise (no lists, or
# lists older than the mirror) it fetches private lists into a scratch directory, which needs no root
# either. The version is whatever the machine's suite ships: 2.42 on Debian 12 (bookworm).
set -eu

dest=${1:-.tools/prometheus}
case $dest in /*) ;; *) dest=$(pwd)/$dest ;; esac

for tool in apt-get dpkg-deb; do
    command -v "$tool" >/dev/null || { echo "fetch-prometheus: $tool not found (a Debian-family machine is needed)" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# apt's download sandbox user cannot write into a private mktemp directory; let it.
chmod 755 "$work"

if ! apt-get -q download prometheus >apt.log 2>&1; then
    echo "fetch-prometheus: not from the machine's package lists ($(tail -n 1 apt.log)); fetching private lists" >&2
    mkdir -p lists/partial cache/archives/partial
    private="-o Dir::State::Lists=$work/lists -o Dir::Cache=$work/cache"
    # shellcheck disable=SC2086 # $private is a list of options
    apt-get -q $private update >apt.log 2>&1 || { cat apt.log >&2; exit 1; }
    # shellcheck disable=SC2086
    apt-get -q $private download prometheus >apt.log 2>&1 || { cat apt.log >&2; exit 1; }
fi

dpkg-deb -x prometheus_*.deb root
mkdir -p "$dest/bin"
cp root/usr/bin/prometheus root/usr/bin/promtool "$dest/bin/"
"$dest/bin/prometheus" --version | head -n 1
