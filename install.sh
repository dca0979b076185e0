#!/bin/sh
# Installs dualmine on a Debian or Ubuntu machine that has only Rust (rustup) on it:
# 1. the system packages the build and the viewer need, only the missing ones (apt-get; it
#    says which: .ci/packages.sh build run), 2. `cargo install --path . --locked` (release
#    profile, stripped), 3. starts the viewer on the built-in phantom demo.
# DUALMINE_NO_DEMO=1 skips step 3.
set -eu
cd "$(dirname "$0")"

sh .ci/packages.sh build run

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "install.sh: cargo not found: install Rust first (rustup)" >&2
    exit 1
  fi
fi

echo "install.sh: building and installing dualmine (cargo install --path . --locked)"
cargo install --path . --locked
bin="${CARGO_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}/bin/dualmine"
echo "install.sh: installed $bin ($(du -h "$bin" | cut -f1))"

if [ "${DUALMINE_NO_DEMO:-0}" = "1" ]; then
  exit 0
fi
echo "install.sh: starting the viewer on the phantom demo"
exec "$bin"
