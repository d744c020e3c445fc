# Shared by scripts/*: installs the pinned local emulator when missing, finds a free port,
# starts moto on loopback. Sourced, not run.

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${DEPLOY_TEST_PYTHON:-python3}"

# Never let the AWS SDK reach the instance-metadata address; use static local credentials.
export AWS_EC2_METADATA_DISABLED=true

ensure_moto() {
  if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "error: $PYTHON not found: the local emulator (moto) needs Python 3 with pip" >&2
    exit 2
  fi
  # Every pin in requirements-test.txt must be installed at exactly its version.
  if ! "$PYTHON" - "$root/requirements-test.txt" <<'PY' >/dev/null 2>&1
import re, sys, importlib.metadata as m
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if line:
        name, version = re.match(r"([A-Za-z0-9_.-]+)(?:\[[^]]*\])?==(\S+)", line).groups()
        assert m.version(name) == version, name
import flask, flask_cors, moto.server  # moto's [server] extra
import awscli
PY
  then
    echo "installing the test requirements (moto[server], the local AWS emulator)..." >&2
    "$PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r "$root/requirements-test.txt"
  fi
}

# The resize-image function's dependencies as wheels for the Lambda platforms, fetched once
# before the tests so that nothing downloads while they run (they install with PIP_NO_INDEX).
ensure_wheels() {
  local reqs="$root/stacks/resize-image/function/requirements.txt"
  local dir="${DEPLOY_TEST_WHEELS:-$root/target/test-wheels}"
  local stamp="$dir/.stamp-$(sha256sum "$reqs" | cut -c1-16)"
  [ -f "$stamp" ] && return 0
  echo "fetching the Lambda function's wheels into $dir..." >&2
  mkdir -p "$dir"
  for platform in manylinux2014_aarch64 manylinux2014_x86_64; do
    "$PYTHON" -m pip download --quiet --disable-pip-version-check -d "$dir" --platform "$platform" \
      --implementation cp --python-version 3.12 --only-binary=:all: -r "$reqs"
  done
  touch "$stamp"
}

# asl-validator (npm, pinned), which the validation tests compare deploy's findings with.
ensure_asl_validator() {
  local dir="$root/target/asl-validator" version=4.0.0
  if [ -x "$dir/node_modules/.bin/asl-validator" ] && grep -q "\"version\": \"$version\"" "$dir/node_modules/asl-validator/package.json" 2>/dev/null; then
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "error: npm not found: the validation tests compare with asl-validator (npm install asl-validator@$version)" >&2
    exit 2
  fi
  echo "installing asl-validator@$version into $dir..." >&2
  mkdir -p "$dir"
  (cd "$dir" && npm install --silent --no-audit --no-fund --no-save "asl-validator@$version" >/dev/null 2>&1) || {
    echo "error: npm could not install asl-validator@$version" >&2
    exit 2
  }
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
