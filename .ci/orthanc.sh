#!/usr/bin/env bash
# Starts (or stops) a throwaway Orthanc PACS on the loopback interface for the PACS tests, with
# a generated configuration: its own storage folder, DICOM and HTTP ports on 127.0.0.1 only, the
# DICOMweb plugin, the called AE title checked, and our AE title ("DUALMINE") known as a
# modality (so that C-MOVE can send to our storage SCP on DUALMINE_PORT). Used by .ci/run and
# by the fault tests, which start a private one they can stop mid-transfer. With ORTHANC_TLS
# set to a folder holding server.crt, server.key and ca.crt, the DICOM port speaks TLS only and
# requires a client certificate signed by that CA.
#   .ci/orthanc.sh start DIR DICOM_PORT HTTP_PORT [DUALMINE_PORT]
#   .ci/orthanc.sh stop DIR
set -eu

command_name="$1"
dir="$2"

case "$command_name" in
  start)
    dicom_port="$3"
    http_port="$4"
    move_port="${5:-$((dicom_port + 1))}"
    binary="$(command -v Orthanc || true)"
    if [ -z "$binary" ]; then
      echo "orthanc.sh: Orthanc is not installed (Debian package orthanc)" >&2
      exit 1
    fi
    mkdir -p "$dir/storage"
    plugins=""
    if [ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ]; then
      plugins='"/usr/share/orthanc/plugins/libOrthancDicomWeb.so"'
    fi
    tls=""
    if [ -n "${ORTHANC_TLS:-}" ]; then
      tls="\"DicomTlsEnabled\": true, \"DicomTlsCertificate\": \"$ORTHANC_TLS/server.crt\",
  \"DicomTlsPrivateKey\": \"$ORTHANC_TLS/server.key\", \"DicomTlsTrustedCertificates\": \"$ORTHANC_TLS/ca.crt\",
  \"DicomTlsRemoteCertificateRequired\": true,"
    fi
    cat > "$dir/orthanc.json" <<JSON
{
  "Name": "dualmine-test",
  "StorageDirectory": "$dir/storage",
  "IndexDirectory": "$dir/storage",
  "StorageCompression": false,
  "Plugins": [ $plugins ],
  "HttpServerEnabled": true,
  "HttpPort": $http_port,
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false,
  "SslEnabled": false,
  "DicomServerEnabled": true,
  "DicomAet": "ORTHANC",
  "DicomPort": $dicom_port,
  "DicomCheckCalledAet": true,
  "DicomCheckModalityHost": false,
  "DicomAlwaysAllowEcho": true,
  "DicomAlwaysAllowStore": true,
  "DicomAlwaysAllowFind": true,
  "DicomAlwaysAllowGet": true,
  "DicomAlwaysAllowMove": true,
  "DicomModalities": { "dualmine": [ "DUALMINE", "127.0.0.1", $move_port ] },
  $tls
  "LimitFindResults": 0,
  "LimitFindInstances": 0,
  "OverwriteInstances": true,
  "StableAge": 1,
  "DicomWeb": { "Enable": true, "Root": "/dicom-web/", "EnableWado": false, "Host": "127.0.0.1:$http_port", "Ssl": false }
}
JSON
    # Orthanc binds every interface for DICOM; RemoteAccessAllowed=false keeps HTTP local, and
    # the tests only ever dial 127.0.0.1.
    "$binary" --logdir="$dir" "$dir/orthanc.json" >"$dir/stdout.log" 2>&1 &
    echo $! > "$dir/pid"
    # Ready when its HTTP port answers (up to 30 s).
    i=0
    while [ $i -lt 60 ]; do
      if (exec 3<>"/dev/tcp/127.0.0.1/$http_port") 2>/dev/null; then
        echo "orthanc.sh: Orthanc up (pid $(cat "$dir/pid"), DICOM 127.0.0.1:$dicom_port, HTTP 127.0.0.1:$http_port)"
        exit 0
      fi
      if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
        echo "orthanc.sh: Orthanc exited; its log:" >&2
        cat "$dir"/*.log >&2 || true
        exit 1
      fi
      sleep 0.5
      i=$((i + 1))
    done
    echo "orthanc.sh: Orthanc did not answer on port $http_port within 30 s" >&2
    exit 1
    ;;
  stop)
    if [ -f "$dir/pid" ]; then
      kill "$(cat "$dir/pid")" 2>/dev/null || true
      rm -f "$dir/pid"
    fi
    ;;
  *)
    echo "orthanc.sh: unknown command '$command_name' (start, stop)" >&2
    exit 2
    ;;
esac
