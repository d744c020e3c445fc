# Shared by scripts/*: checks the prerequisites, keeps the project's own Python virtual
# environment (.venv, git-ignored) with the pinned emulator and test tools, finds a free
# port, starts moto on loopback. Sourced, not run.
#
# Nothing is ever installed into the system Python (PEP 668): Debian's and Ubuntu's python3
# only create the virtual environment. DEPLOY_BASE_PYTHON picks another interpreter for that,
# DEPLOY_VENV another folder.

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE_PYTHON="${DEPLOY_BASE_PYTHON:-python3}"
VENV="${DEPLOY_VENV:-$root/.venv}"
PYTHON="$VENV/bin/python"

# Never let the AWS SDK reach the instance-metadata address; use static local credentials.
export AWS_EC2_METADATA_DISABLED=true

# fail MESSAGE...: one clear line (and what to do) on stderr, exit 2.
fail() {
  printf 'error: %s\n' "$1" >&2
  shift
  for line in "$@"; do printf '  %s\n' "$line" >&2; done
  exit 2
}

require_cargo() {
  command -v cargo >/dev/null 2>&1 ||
    fail "cargo not found: deploy is built with Rust $(rust_version) or later" \
      "install it with rustup: https://rustup.rs (Debian/Ubuntu: sudo apt-get install curl build-essential, then the rustup line)"
}

rust_version() {
  sed -n 's/^rust-version = "\(.*\)"/\1/p' "$root/Cargo.toml"
}

# ensure_venv: the project's virtual environment with every pin of requirements-test.txt,
# created with python3 -m venv, reused while the pins are unchanged.
ensure_venv() {
  command -v "$BASE_PYTHON" >/dev/null 2>&1 ||
    fail "$BASE_PYTHON not found: the local AWS emulator (moto) needs Python 3.9 or later with venv" \
      "Debian/Ubuntu: sudo apt-get install python3 python3-venv" \
      "macOS: brew install python"
  local reqs="$root/requirements-test.txt" hash stamp
  hash=$("$BASE_PYTHON" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest()[:16])' "$reqs")
  stamp="$VENV/.requirements-$hash"
  if [ -x "$PYTHON" ] && [ -f "$stamp" ]; then
    return 0
  fi
  if [ ! -x "$PYTHON" ] || ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    rm -rf "$VENV"
    echo "creating the project's Python environment in $VENV..." >&2
    local err
    if ! err=$("$BASE_PYTHON" -m venv "$VENV" 2>&1); then
      rm -rf "$VENV"
      fail "$BASE_PYTHON cannot create a virtual environment (python3 -m venv: ${err##*$'\n'})" \
        "Debian/Ubuntu: sudo apt-get install python3-venv   (then run this again)" \
        "or point DEPLOY_BASE_PYTHON at another Python 3 that has venv and ensurepip"
    fi
  fi
  echo "installing the pinned test requirements (moto[server], Pillow, the AWS CLI, actionlint) into $VENV..." >&2
  "$PYTHON" -m pip install --quiet --disable-pip-version-check -r "$reqs" ||
    fail "pip could not install $reqs into $VENV" "pip needs PyPI (or PIP_INDEX_URL pointing at a mirror)"
  rm -f "$VENV"/.requirements-*
  touch "$stamp"
}

# The resize-image function's dependencies as wheels for the Lambda platforms, fetched once
# before the tests so that nothing downloads while they run (they install with PIP_NO_INDEX).
ensure_wheels() {
  local reqs="$root/stacks/resize-image/function/requirements.txt"
  local dir="${DEPLOY_TEST_WHEELS:-$root/target/test-wheels}"
  local stamp="$dir/.stamp-$("$PYTHON" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest()[:16])' "$reqs")"
  [ -f "$stamp" ] && return 0
  echo "fetching the Lambda function's wheels into $dir..." >&2
  mkdir -p "$dir"
  for platform in manylinux2014_aarch64 manylinux2014_x86_64; do
    "$PYTHON" -m pip download --quiet --disable-pip-version-check -d "$dir" --platform "$platform" \
      --implementation cp --python-version 3.12 --only-binary=:all: -r "$reqs" ||
      fail "pip could not fetch the wheels of $reqs for $platform"
  done
  touch "$stamp"
}

# asl-validator (npm, pinned), which one validation test compares deploy's findings with.
# Optional: without npm that comparison is reported as skipped, by name.
ensure_asl_validator() {
  local dir="$root/target/asl-validator" version=4.0.0
  if [ -x "$dir/node_modules/.bin/asl-validator" ] && grep -q "\"version\": \"$version\"" "$dir/node_modules/asl-validator/package.json" 2>/dev/null; then
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "note: npm not found: the comparison with asl-validator will be skipped (Debian/Ubuntu: sudo apt-get install npm; macOS: brew install node)" >&2
    return 0
  fi
  echo "installing asl-validator@$version into $dir..." >&2
  mkdir -p "$dir"
  (cd "$dir" && npm install --silent --no-audit --no-fund --no-save "asl-validator@$version" >/dev/null 2>&1) ||
    echo "note: npm could not install asl-validator@$version: the comparison with it will be skipped" >&2
}

# ensure_js_sdk: the AWS SDK for JavaScript's Step Functions client (@aws-sdk/client-sfn), which
# the API test drives deploy local with beside boto3 and the AWS CLI, in target/sfn-js.
ensure_js_sdk() {
  local dir="$root/target/sfn-js" version=3.1178.0
  if grep -q "\"version\": \"$version\"" "$dir/node_modules/@aws-sdk/client-sfn/package.json" 2>/dev/null; then
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "note: npm not found: the API test through @aws-sdk/client-sfn will be skipped (Debian/Ubuntu: sudo apt-get install npm)" >&2
    return 0
  fi
  echo "installing @aws-sdk/client-sfn@$version into $dir..." >&2
  mkdir -p "$dir"
  (cd "$dir" && npm install --silent --no-audit --no-fund --no-save "@aws-sdk/client-sfn@$version" >/dev/null 2>&1) ||
    echo "note: npm could not install @aws-sdk/client-sfn@$version: the API test through it will be skipped" >&2
}

# ensure_browser: Debian's chromium and chromium-driver for the page's browser tests
# (tests/local.rs), installed where missing when this runs as root or with password-less sudo;
# otherwise the tests that need them say they are skipped and how to install them.
ensure_browser() {
  command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 && return 0
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if sudo -n true 2>/dev/null; then sudo="sudo -n"; else
      echo "note: chromium and chromium-driver not found: the browser tests will be skipped (Debian/Ubuntu: sudo apt-get install chromium chromium-driver)" >&2
      return 0
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "note: chromium and chromedriver not found and no apt-get: the browser tests will be skipped" >&2
    return 0
  fi
  echo "installing Debian's chromium and chromium-driver for the browser tests..." >&2
  local install="$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver"
  $install >/dev/null 2>&1 || { $sudo apt-get update -q >/dev/null 2>&1; $install >/dev/null 2>&1; } ||
    echo "note: apt-get could not install chromium and chromium-driver: the browser tests will be skipped" >&2
}

free_port() {
  "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_moto PORT LOGFILE: starts moto in the background and waits until it answers.
start_moto() {
  local port=$1 log=$2
  MOTO_IAM_LOAD_MANAGED_POLICIES=true nohup "$PYTHON" -m moto.server -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  local pid=$!
  wait_http "http://127.0.0.1:$port/moto-api/data.json" "$pid" "$log" moto || return 1
  echo "$pid"
}

# wait_http URL PID LOG WHAT: waits until URL answers (any HTTP status), or the process dies.
wait_http() {
  local url=$1 pid=$2 log=$3 what=$4
  for _ in $(seq 1 100); do
    if "$PYTHON" - "$url" <<'PY' 2>/dev/null
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=1)
except urllib.error.HTTPError:
    pass
PY
    then
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { echo "error: $what exited; see $log" >&2; return 1; }
    sleep 0.2
  done
  echo "error: $what did not answer at $url; see $log" >&2
  return 1
}
