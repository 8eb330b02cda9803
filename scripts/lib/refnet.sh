# shellcheck shell=bash
# scripts/lib/refnet.sh: the README's reference network, sourced after
# netns.sh by scripts/lab and scripts/bench-faults: node_1 the hub (10.1.1.1),
# node_2..node_4 hold the VIP 10.1.1.10 (exec health check on a file in
# $WORK/health), node_5 the client (10.1.1.2); its five network directories are
# built once with meshd init / invite / join (make_meshd_template), then copied
# for every trial (meshd_up).
# shellcheck disable=SC2034 # variables the sourcing script reads

VIP=10.1.1.10
VIP_LEN=24
use_vip6() { # scripts/lab --vip6: the IPv6 VIP, every node with an IPv6 address too
  VIP=fd00:1::10
  VIP_LEN=64
  VIP6=1
}
HOLDERS=(2 3 4)
ovl() { # N -> the node's own overlay address
  case "$1" in
    1) echo 10.1.1.1 ;;
    5) echo 10.1.1.2 ;;
    *) echo "10.1.1.10$1" ;;
  esac
}
ovl6() { # N -> the node's own IPv6 overlay address (--vip6)
  case "$1" in
    1) echo fd00:1::1 ;;
    5) echo fd00:1::2 ;;
    *) echo "fd00:1::10$1" ;;
  esac
}
is_holder() { case " ${HOLDERS[*]} " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# make_meshd_template DIR [CONF_LINE...]: the five directories in DIR, made the
# way a person would (README, "Quick start"); CONF_LINEs are network-wide
# settings in node_1's tinc.conf that every invitation hands over (and that a
# joined node gets if its invitation did not). Sets MESH_MS (full mesh after
# the last start) and VIP_MS (node_5 sees the three holders eligible).
MESH_MS=""
VIP_MS=""
make_meshd_template() {
  local t=$1 i d url sets t0 t1 short line
  shift
  mkdir -p "$t" "$WORK/health"
  for i in "${HOLDERS[@]}"; do touch "$WORK/health/node_$i"; done
  say "the network: meshd init / invite / join in namespaces $P*"
  lab_up
  d="$t/node_1"
  "$MESHD" -c "$d" init node_1 --address 192.0.2.1 >"$WORK/build-init.log" 2>&1 || {
    cat "$WORK/build-init.log" >&2
    return 1
  }
  echo "Interface = mesh0" >>"$d/tinc.conf"
  for line in "$@"; do echo "$line" >>"$d/tinc.conf"; done
  echo "ip addr replace $(ovl 1)/24 dev \"\$INTERFACE\"" >>"$d/tinc-up"
  [ "${VIP6:-0}" = 0 ] || echo "ip addr replace $(ovl6 1)/64 dev \"\$INTERFACE\"" >>"$d/tinc-up"
  meshd_start 1 "$d" || return 1
  say "  node_1: meshd init node_1 --address 192.0.2.1; tinc-up gets 10.1.1.1/24; meshd start"
  for i in 2 3 4 5; do
    sets=(--set "Ifconfig=$(ovl "$i")/24")
    [ "${VIP6:-0}" = 0 ] || sets+=(--set "Ifconfig=$(ovl6 "$i")/64")
    ! is_holder "$i" || sets+=(--set "VirtualIP=$VIP/$VIP_LEN")
    url=$("$MESHD" -c "$d" invite "node_$i" "${sets[@]}" 2>"$WORK/build-invite-$i.log") || {
      cat "$WORK/build-invite-$i.log" >&2
      return 1
    }
    short="${url:0:26}..."
    say "  node_1: meshd invite node_$i ${sets[*]}  -> $short"
    if ! in_ns "$i" "$MESHD" -c "$t/node_$i" join "$url" --force >"$WORK/build-join-$i.log" 2>&1; then
      say "meshd join failed on node_$i:"
      cat "$WORK/build-join-$i.log" >&2
      return 1
    fi
    echo "Interface = mesh0" >>"$t/node_$i/tinc.conf"
    for line in "$@"; do
      grep -q "^${line%% *}" "$t/node_$i/tinc.conf" || echo "$line" >>"$t/node_$i/tinc.conf"
    done
    if is_holder "$i"; then
      # A join refuses exec checks from an invitation: the admin adds it.
      echo "HealthCheck = $VIP exec interval=100ms timeout=100ms rise=2 fall=1 test -f $WORK/health/node_$i" \
        >>"$t/node_$i/hosts/node_$i"
      say "  node_$i: meshd join $short --force; + HealthCheck (exec) in hosts/node_$i; meshd start"
    else
      say "  node_$i: meshd join $short --force; meshd start"
    fi
    meshd_start "$i" "$t/node_$i" || return 1
  done
  t0=${EPOCHREALTIME/./}
  if ! wait_for 30 meshd_full_mesh "$t"; then
    say "the five joined nodes did not form a full mesh within 30 s:"
    for i in 1 5; do "$MESHD" -c "$t/node_$i" dump nodes >&2 || true; done
    return 1
  fi
  t1=${EPOCHREALTIME/./}
  MESH_MS=$(((t1 - t0) / 1000))
  if ! wait_for 20 meshd_vip_ready "$t" 5 3; then
    say "node_5 did not see three eligible holders of $VIP within 20 s:"
    "$MESHD" -c "$t/node_5" dump vips >&2 || true
    return 1
  fi
  t1=${EPOCHREALTIME/./}
  VIP_MS=$(((t1 - t0) / 1000))
  say "  full mesh (every node reaches all five) ${MESH_MS} ms after the last start; node_5 sees" \
    "three eligible holders of $VIP after ${VIP_MS} ms (health checks rise=2, VIPHoldDown)"
  if [ "$TTY" = 1 ]; then
    "$MESHD" -c "$t/node_5" dump vips | sed 's/^/    node_5: /' >&2 || true
  fi
  meshd_stop_all "$t" 5
  lab_down
  # The template: configuration and keys only.
  rm -f "$t"/node_*/meshd.log "$t"/node_*/meshd.pid "$t"/node_*/meshd.socket "$t"/node_*/start.log
}

# meshd_up TEMPLATE RUNDIR [HOOK]: a fresh copy of the template started (then
# HOOK RUNDIR); 0 once node_5 sees three eligible holders and reaches the VIP.
meshd_up() {
  local run=$2 i
  cp -a "$1/." "$run/"
  for i in "${HOLDERS[@]}"; do touch "$WORK/health/node_$i"; done
  lab_up
  for i in 1 2 3 4 5; do
    meshd_start "$i" "$run/node_$i" || return 1
  done
  [ -z "${3:-}" ] || "$3" "$run" || return 1
  if ! wait_for 20 meshd_vip_ready "$run" 5 3; then
    say "node_5 did not see three eligible holders of $VIP within 20 s:"
    "$MESHD" -c "$run/node_5" dump vips >&2 || true
    return 1
  fi
  if ! wait_for 10 in_ns 5 ping -c 1 -W 1 "$VIP"; then
    say "node_5 cannot ping $VIP"
    return 1
  fi
}
