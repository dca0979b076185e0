#!/bin/sh
# Installs the Debian/Ubuntu packages of the named groups that this machine lacks, saying
# which (apt-get, as root or through sudo). Groups:
#   build  a C/C++ compiler and linker driver (rustc links through `cc`), cmake (CharLS is
#          built from source and linked statically), TLS roots for crates.io
#   run    the Vulkan loader and Mesa's drivers (lavapipe draws where there is no GPU), the
#          X11/Wayland client libraries winit opens when the viewer's window starts
#   test   Xvfb for the viewer tests, dicom3tools (dciodvfy) and pydicom for the export tests,
#          Orthanc (+ its DICOMweb plugin), dcmtk and openssl (test certificates) for the
#          PACS tests
# Used by install.sh (build run) and .ci/run (build run test).
set -eu

packages=""
for group in "$@"; do
  case "$group" in
    build) packages="$packages ca-certificates gcc g++ make cmake pkg-config" ;;
    run) packages="$packages libvulkan1 mesa-vulkan-drivers libegl1 libgl1-mesa-dri libx11-6
           libx11-xcb1 libxcursor1 libxrandr2 libxi6 libxkbcommon0 libxkbcommon-x11-0
           libwayland-client0 libwayland-cursor0 libwayland-egl1 libfontconfig1" ;;
    test) packages="$packages xvfb xauth dicom3tools python3-pydicom orthanc orthanc-dicomweb dcmtk openssl" ;;
    *) echo "packages.sh: unknown group '$group' (build, run, test)" >&2; exit 2 ;;
  esac
done

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "packages.sh: not a Debian/Ubuntu system; make sure these are installed:" >&2
  echo " $packages" >&2
  exit 0
fi

missing=""
for package in $packages; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $package"
  fi
done
if [ -z "$missing" ]; then
  echo "packages.sh: system packages present ($*)"
  exit 0
fi

echo "packages.sh: installing:$missing"
if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1; then
  sudo="sudo"
else
  echo "packages.sh: need root (or sudo) to install:$missing" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086 # one word per package
$sudo apt-get install -y -qq --no-install-recommends $missing
