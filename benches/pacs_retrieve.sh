#!/bin/bash
# Issue 19's retrieve measurement: a 300-slice 512² CT (the phantom) stored in a private Orthanc
# on loopback, retrieved as one series by `dualmine pacs get` over C-GET and over WADO-RS, and by
# dcmtk's getscu (C-GET; as installed, and with TCP_NODELAY=1, which turns off Nagle's
# algorithm in dcmtk — without it each small C-STORE response waits for a delayed ACK), alternating, three rounds, each into an empty folder. Needs orthanc,
# orthanc-dicomweb and dcmtk (`sh .ci/packages.sh test`). Prints wall seconds per run.
set -euo pipefail
cd "$(dirname "$0")/.."
# The target folder .ci/run uses (kept outside the clone), unless CARGO_TARGET_DIR says otherwise.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${DUALMINE_TARGET_DIR:-$HOME/.cache/dualmine-target}}"
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/dualmine"
work="$(mktemp -d)"
bash .ci/orthanc.sh start "$work/server" 14542 18542
trap 'bash .ci/orthanc.sh stop "$work/server"; rm -rf "$work"' EXIT
"$bin" phantom "$work/phantom" --matrix 512 --slices 300 >/dev/null
storescu -aec ORTHANC +sd +r 127.0.0.1 14542 "$work/phantom/CT"
export DUALMINE_CONFIG_DIR="$work/config"
node=ORTHANC@127.0.0.1:14542
series_json="$("$bin" pacs find "$node" --modality CT --json)"
study="$(python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["study_uid"])' <<<"$series_json")"
series="$("$bin" pacs find "$node" --series-of "$study" --modality CT --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["series_uid"])')"
echo "study $study, CT series $series: $(find "$work/phantom/CT" -type f | wc -l) files, $(du -sm "$work/phantom/CT" | cut -f1) MB"
TIMEFORMAT=%R
for round in 1 2 3; do
  rm -rf "$work/cache" "$work/getscu" && mkdir -p "$work/getscu"
  echo -n "round $round dualmine C-GET s: "
  { time DUALMINE_CACHE_DIR="$work/cache" "$bin" pacs get "$node" "$study" --series "$series" >/dev/null 2>&1; } 2>&1
  echo -n "round $round getscu C-GET s: "
  { time getscu -aec ORTHANC -S -k QueryRetrieveLevel=SERIES -k StudyInstanceUID="$study" \
      -k SeriesInstanceUID="$series" -od "$work/getscu" 127.0.0.1 14542 >/dev/null 2>&1; } 2>&1
  rm -rf "$work/getscu" && mkdir -p "$work/getscu"
  echo -n "round $round getscu, TCP_NODELAY=1 s: "
  { time TCP_NODELAY=1 getscu -aec ORTHANC -S -k QueryRetrieveLevel=SERIES -k StudyInstanceUID="$study" \
      -k SeriesInstanceUID="$series" -od "$work/getscu" 127.0.0.1 14542 >/dev/null 2>&1; } 2>&1
  rm -rf "$work/cache"
  echo -n "round $round dualmine WADO-RS s: "
  { time DUALMINE_CACHE_DIR="$work/cache" "$bin" pacs get "http://127.0.0.1:18542/dicom-web" "$study" --series "$series" >/dev/null 2>&1; } 2>&1
  echo "  files: dualmine $(find "$work/cache" -name '*.dcm' | wc -l), getscu $(find "$work/getscu" -type f | wc -l)"
done
