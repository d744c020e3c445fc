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
  local want
  want=$(sed -n 's/^moto\[server\]==//p' "$root/requirements-test.txt")
  if ! "$PYTHON" - "$want" <<'PY' >/dev/null 2>&1
import sys, importlib.metadata as m
assert m.version("moto") == sys.argv[1]
import flask, flask_cors, moto.server  # the [server] extra
PY
  then
    echo "installing moto[server]==$want (local AWS emulator)..." >&2
    "$PYTHON" -m pip install --quiet --disable-pip-version-check -r "$root/requirements-test.txt"
  fi
}

free_port() {
  "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_moto PORT LOGFILE: starts moto in the background and waits until it answers.
start_moto() {
  local port=$1 log=$2
  MOTO_IAM_LOAD_MANAGED_POLICIES=true nohup "$PYTHON" -m moto.server -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do
    if "$PYTHON" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/data.json', timeout=1)" 2>/dev/null; then
      echo "$pid"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { echo "error: moto exited; see $log" >&2; return 1; }
    sleep 0.2
  done
  echo "error: moto did not answer on port $port; see $log" >&2
  return 1
}
