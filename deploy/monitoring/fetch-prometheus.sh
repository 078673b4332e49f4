#!/bin/sh
# Puts Debian's `prometheus` and `promtool` into DEST/bin (default .tools/prometheus), without root:
# `apt-get download` fetches the packages (checked against the suite's signed Release file with the
# machine's Debian archive keyring), `dpkg-deb -x` unpacks them. Both are Go programs needing only libc.
#
# The suite is Debian testing (SUITE, default `forky`), which ships the Prometheus 3.5 LTS release
# that current clusters run; Debian 12's own 2.42 is two majors behind. The suite's package lists
# are fetched into a scratch directory (no root, the machine's own lists untouched). Needs apt-get,
# dpkg-deb and the Debian mirror; `SUITE=bookworm` gives 2.42 instead.
set -eu

dest=${1:-.tools/prometheus}
case $dest in /*) ;; *) dest=$(pwd)/$dest ;; esac
suite=${SUITE:-forky}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

for tool in apt-get dpkg-deb; do
    command -v "$tool" >/dev/null || { echo "fetch-prometheus: $tool not found (a Debian-family machine is needed)" >&2; exit 1; }
done
[ -f "$keyring" ] || { echo "fetch-prometheus: $keyring not found (package debian-archive-keyring)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
mkdir -p lists/partial cache/archives/partial
# apt's download sandbox user cannot write into a private mktemp directory; let it.
chmod -R 755 "$work"
echo "deb [signed-by=$keyring] $mirror $suite main" >sources.list
private="-o Dir::State::Lists=$work/lists -o Dir::Cache=$work/cache -o Dir::Etc::SourceList=$work/sources.list -o Dir::Etc::SourceParts=/nonexistent"
# shellcheck disable=SC2086 # $private is a list of options
apt-get -q $private update >apt.log 2>&1 || { cat apt.log >&2; exit 1; }
# Since 3.x promtool is a package of its own; before, it came inside `prometheus`.
packages=prometheus
# shellcheck disable=SC2086
if apt-cache $private show promtool >/dev/null 2>&1; then packages="prometheus promtool"; fi
# shellcheck disable=SC2086
apt-get -q $private download $packages >apt.log 2>&1 || { cat apt.log >&2; exit 1; }

for deb in ./*.deb; do dpkg-deb -x "$deb" root; done
mkdir -p "$dest/bin"
cp root/usr/bin/prometheus root/usr/bin/promtool "$dest/bin/"
"$dest/bin/prometheus" --version | head -n 1
