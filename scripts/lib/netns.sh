# shellcheck shell=bash
# scripts/lib/netns.sh: what scripts/lab and the benchmarks share, sourced
# (never run): progress lines, option checks, the build and the private copies
# of the binaries, network namespaces on one bridge and their teardown, and
# meshd daemons started, checked and stopped in them. The measuring and the
# verdicts are in Rust (meshd-lab, lab/).
#
# The caller sets KEEP (1: keep $WORK), BUILD (0: no cargo build) and DEBUG
# (meshd start -d), calls lab_workdir PREFIX BINARY..., then uses ns_of /
# in_ns / lab_up / meshd_start; PIDS and NSES are torn down on exit.
# shellcheck disable=SC2034 # variables the sourcing script reads

# --- progress: a live status line on a terminal, lines that stay on stderr ----
TTY=0
[ -t 2 ] && TTY=1
COLS=100
if [ "$TTY" = 1 ]; then
  COLS=$(tput cols 2>/dev/null || echo 100)
  case "$COLS" in '' | *[!0-9]*) COLS=100 ;; esac
fi
STATUS_SHOWN=0
status() { # TEXT: replaces the status line (terminal only)
  [ "$TTY" = 1 ] || return 0
  local t=$1
  [ ${#t} -lt "$COLS" ] || t="${t:0:$((COLS - 1))}"
  printf '\r\033[K%s' "$t" >&2
  STATUS_SHOWN=1
}
say() { # a line that stays
  if [ "$STATUS_SHOWN" = 1 ]; then
    printf '\r\033[K' >&2
    STATUS_SHOWN=0
  fi
  printf '%s\n' "$*" >&2
}

# --- options -------------------------------------------------------------------
need_arg() { [ "$2" -ge 2 ] || { echo "$1 needs a value (see --help)" >&2; exit 2; }; }
positive_int() { # NAME VALUE
  case "$2" in
    '' | *[!0-9]* | 0) echo "$1 wants a positive whole number, not '$2'" >&2; exit 2 ;;
  esac
}
need_root() { # SCRIPT
  if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/$1 needs root (network namespaces, TAP devices): sudo scripts/$1" >&2
    exit 1
  fi
}

# --- the build and the work directory ----------------------------------------
# lab_build CARGO_ARGS...: cargo build --release (nothing when up to date);
# with --no-build or without cargo, what target/release holds is used.
lab_build() {
  [ "${BUILD:-1}" = 1 ] || return 0
  if ! command -v cargo >/dev/null 2>&1; then
    say "cargo is not in root's PATH: using target/release as it is (or run: sudo env \"PATH=\$PATH\" scripts/...)"
    return 0
  fi
  say "building meshd (cargo build --release; the first build takes a few minutes)..."
  cargo build --release --quiet "$@" >&2 || say "cargo build failed: using target/release as it is"
}

# lab_start SCRIPT CARGO_ARGS... -- ARGS...: from the repository's top,
# builds meshd-lab and what CARGO_ARGS name (not with --no-build; not for
# --help once meshd-lab exists), then sets the script's variables from its
# options ARGS as meshd-lab checked them (lab/src/args.rs: meshd-lab args).
lab_start() {
  local script=$1 cargo=() a out rc=0
  shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do cargo+=("$1") && shift; done
  shift
  cd "$(dirname "$0")/.." || exit 1
  BUILD=1
  for a in "$@"; do
    case "$a" in
      --no-build) BUILD=0 ;;
      -h | --help) [ ! -x target/release/meshd-lab ] || BUILD=0 ;;
    esac
  done
  lab_build -p meshd-lab --bin meshd-lab "${cargo[@]}"
  [ -x target/release/meshd-lab ] || { echo "target/release/meshd-lab is missing (cargo build --release -p meshd-lab)" >&2; exit 1; }
  out=$(target/release/meshd-lab args "$script" -- "$@") || rc=$?
  case "$rc" in
    0) eval "$out" ;;
    3) printf '%s\n' "$out" && exit 0 ;;
    *) exit "$rc" ;;
  esac
}

# lab_workdir PREFIX FILE...: P, BR, WORK (removed on exit unless KEEP=1),
# private copies of FILEs (target/release/...) in $WORK, so that a concurrent
# rebuild cannot swap them mid-run; MESHD is the copy of meshd; REV the commit.
lab_workdir() {
  local f
  P="$1$$"
  BR="${P}b"
  shift
  for f in "$@"; do
    [ -x "$f" ] || { echo "$f is missing (cargo build --release)" >&2; exit 1; }
  done
  WORK="$(mktemp -d "/tmp/${P}.XXXXXX")"
  for f in "$@"; do cp "$f" "$WORK/"; done
  MESHD="$WORK/meshd"
  REV="$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  [ -z "$(git status --porcelain -- src core lab Cargo.toml Cargo.lock 2>/dev/null)" ] || REV="$REV+dirty"
  trap lab_cleanup EXIT
  trap 'exit 130' INT TERM
}

PIDS=()     # processes started in the current network (killed at teardown)
FROZEN=()   # of those, the ones stopped with SIGSTOP (continued first)
WATCHERS=() # of those, the ones ended with SIGTERM first (they end their children)
NSES=()     # namespaces of the current network
declare -A DPID # node number -> daemon PID

# True while PID is a live process (exited daemons may stay zombies here,
# so kill -0 is not enough).
alive() {
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  case "${st%% *}" in
    Z | X | '') return 1 ;;
  esac
  return 0
}

# Polls "$@" every 0.05 s for up to $1 seconds.
wait_for() {
  local limit=$1 i
  shift
  for ((i = 0; i < limit * 20; i++)); do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.05
  done
  return 1
}

# --- namespaces ------------------------------------------------------------------
ns_of() { echo "${P}n$1"; }
in_ns() { # N CMD...
  local n=$1
  shift
  ip netns exec "${P}n$n" "$@"
}
TTL_BASE=40 # node_N answers with TTL 40 + N: an echo reply names its sender

# lab_up [N]: the bridge namespace and node namespaces 1..N (default 5), eth0 =
# 192.0.2.i/24 on the bridge's port vI, default TTL 40 + i.
lab_up() {
  local i ns n=${1:-5}
  ip netns add "$BR"
  NSES+=("$BR")
  ip -n "$BR" link add br0 type bridge
  ip -n "$BR" link set br0 up
  for ((i = 1; i <= n; i++)); do
    ns=$(ns_of "$i")
    ip netns add "$ns"
    NSES+=("$ns")
    ip -n "$BR" link add "v$i" type veth peer name eth0 netns "$ns"
    ip -n "$BR" link set "v$i" master br0 up
    ip -n "$ns" addr add "192.0.2.$i/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    if [ $((TTL_BASE + i)) -le 255 ]; then
      ip netns exec "$ns" sysctl -qw "net.ipv4.ip_default_ttl=$((TTL_BASE + i))"
      # The same for IPv6 (scripts/lab --vip6): the hop limit of interfaces made later.
      ip netns exec "$ns" sysctl -qw "net.ipv6.conf.default.hop_limit=$((TTL_BASE + i))"
    fi
  done
}

# Ends every process of the current network (only those this script started)
# and deletes its namespaces.
lab_down() {
  local pid ns i
  disown -a 2>/dev/null || true # no "Killed" notes from the shell
  for pid in "${FROZEN[@]}"; do kill -CONT "$pid" 2>/dev/null || true; done
  for pid in "${WATCHERS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${WATCHERS[@]}"; do
    for ((i = 0; i < 20; i++)); do alive "$pid" || break; sleep 0.05; done
  done
  for pid in "${PIDS[@]}"; do
    if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  for pid in "${PIDS[@]}"; do
    for ((i = 0; i < 40; i++)); do alive "$pid" || break; sleep 0.05; done
  done
  for ns in "${NSES[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  PIDS=()
  WATCHERS=()
  FROZEN=()
  NSES=()
}

lab_cleanup() {
  set +e
  [ "$STATUS_SHOWN" = 0 ] || printf '\r\033[K' >&2
  lab_down
  if [ "${KEEP:-0}" = 1 ]; then
    echo "work directory kept: $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}

# --- meshd in the namespaces -------------------------------------------------------
meshd_start() { # N DIR: meshd start in node N's namespace; DPID[N], PIDS
  local n=$1 d=$2 pid
  if ! in_ns "$n" "$MESHD" -c "$d" start -d "${DEBUG:-1}" >"$d/start.log" 2>&1; then
    # It may have started without answering in time: it is ours to end.
    [ ! -s "$d/meshd.pid" ] || PIDS+=("$(cut -d" " -f1 "$d/meshd.pid")")
    say "meshd node_$n did not start:"
    cat "$d/start.log" >&2
    return 1
  fi
  pid=$(cut -d" " -f1 "$d/meshd.pid") # the pidfile: no control round trip
  PIDS+=("$pid")
  DPID[$n]=$pid
}

meshd_full_mesh() { # DIR [N]: every node sees all N (default 5) reachable
  local i c n=${2:-5}
  for ((i = 1; i <= n; i++)); do
    c=$(timeout 5 "$MESHD" -c "$1/node_$i" dump reachable nodes 2>/dev/null | grep -c '^node_[0-9]* ' || true)
    [ "$c" -ge "$n" ] || return 1
  done
}

meshd_vip_ready() { # DIR CLIENT HOLDERS: the client sees HOLDERS holders eligible
  local n
  n=$(timeout 5 "$MESHD" -c "$1/node_$2" dump vips 2>/dev/null |
    awk '/holder node_/ && / alive yes offered yes holddown 0 / { c++ } END { print c + 0 }')
  [ "$n" -eq "$3" ]
}

meshd_stop_all() { # DIR N: meshd stop of node_N..node_1
  local i
  for ((i = $2; i >= 1; i--)); do
    timeout 5 "$MESHD" -c "$1/node_$i" stop >/dev/null 2>&1 || true
  done
}
