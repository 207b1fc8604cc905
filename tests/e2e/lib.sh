# Shared by the e2e suite, the demo and the benchmark: boot a testbed, install the built
# tree into it, start hostd and HAProxy. Sourced; expects REPO, BUILD and TB_NAME.
TB="$REPO/tests/testbed/testbed"

in_tb() { "$TB" run "$TB_NAME" -- "$@"; }

# A tenant's disk destroyed as a failed disk would leave it (a loop tenant of machine TB_NAME):
# PostgreSQL gone at once (an immediate shutdown: no last checkpoint and no switch to a new WAL
# segment, which a clean stop makes and archives), then nothing of its filesystem anywhere.
tb_destroy_disk() {
    local t=$1 img=/var/lib/hostd/loop/$1.img dev
    in_tb systemctl kill -s QUIT --kill-whom=main "hostd-postgres@$t.service" || return 1
    for _ in $(seq 100); do
        [ "$(in_tb systemctl is-active "hostd-postgres@$t.service")" = active ] || break
        sleep 0.1
    done
    in_tb systemctl stop "hostd-postgres@$t.service" || return 1
    in_tb in-hostd umount "/srv/hostd/$t" || return 1
    dev=$(in_tb losetup -n -O NAME -j "$img") || return 1
    [ -n "$dev" ] && { in_tb losetup -d "$dev" || return 1; }
    in_tb rm "$img"
}

# Boots the machine and installs hostd in it (the overlay's upper layer is a tmpfs: the
# host's own /usr and /etc are untouched).
tb_boot_and_install() {
    local loops=${1:-24}
    "$TB" up "$TB_NAME" --loops "$loops" ${TB_UP_ARGS:-} >/dev/null || return 1
    local root
    root=$("$TB" root "$TB_NAME") || return 1
    # Never without a machine: an empty DESTDIR would install onto the host itself.
    case "$root" in /run/hostd-testbed/*/root) ;; *) echo "testbed root '$root' is not a machine's root" >&2; return 1 ;; esac
    DESTDIR="$root" cmake --install "$BUILD" >/dev/null || return 1
    # Loopback only on these shared VMs; the testbed shares the host's network namespace.
    cat >"$root/etc/hostd/hostd.toml" <<TOML
[proxy]
public_host = "127.0.0.1"
bind = "127.0.0.1"
TOML
    # Tenant filesystems are mounted in hostd's own mount namespace (and each in its unit's),
    # not in the machine's: tests look at them through this.
    install -D -m 0755 /dev/stdin "$root/usr/local/sbin/in-hostd" <<'SH' || return 1
#!/bin/sh
# Runs a command in hostd's mount namespace; in the machine's if hostd is not running (then
# no namespace holds hostd's mounts).
pid=$(systemctl show -P MainPID hostd.service)
[ "${pid:-0}" -gt 0 ] && exec nsenter -t "$pid" -m -- "$@"
exec "$@"
SH
    in_tb systemd-sysusers hostd.conf || return 1
    in_tb systemctl daemon-reload || return 1
    # As cmake --install does on a live host: journald takes hostd's drop-in (SplitMode=none).
    in_tb systemctl restart systemd-journald.service || return 1
    in_tb systemctl enable --now hostd.socket >/dev/null 2>&1 || return 1
    in_tb systemctl restart haproxy.service || return 1
}

# An HA fleet (#17): machines "$@" booted on network NET (each its own namespace and address),
# hostd installed on each with one CA (the first machine's, copied before the others' hostd
# makes its own), [proxy] on the machine's address and [ha] naming every machine; hostd
# restarted, etcd (run by hostd) healthy, the hosts greeted each other. Fills the associative
# arrays A (machine → address) and R (machine → root), which the caller declares.
ha_fleet_up() {
    local net=$1 m hosts="" first
    shift
    first=$1
    "$TB" cleanup >/dev/null 2>&1 || true
    for m in "$@"; do
        TB_UP_ARGS="--net $net" TB_NAME=$m tb_boot_and_install 8 >/dev/null || { echo "# boot $m failed" >&2; return 1; }
        A[$m]=$("$TB" addr "$m")
        R[$m]=$("$TB" root "$m")
    done
    "$TB" run "$first" -- hostctl ca >/dev/null || return 1
    for m in "${@:2}"; do
        install -d -m 0700 "${R[$m]}/var/lib/hostd/ca"
        install -m 0600 "${R[$first]}/var/lib/hostd/ca/ca.key" "${R[$m]}/var/lib/hostd/ca/ca.key"
        install -m 0644 "${R[$first]}/var/lib/hostd/ca/ca.crt" "${R[$m]}/var/lib/hostd/ca/ca.crt"
    done
    for m in "$@"; do hosts+="${hosts:+, }\"$m=${A[$m]}\""; done
    for m in "$@"; do
        # Clients reach each member host's proxy at its address (in its own network namespace).
        cat >"${R[$m]}/etc/hostd/hostd.toml" <<TOML
[proxy]
public_host = "${A[$m]}"
bind = "0.0.0.0"

[ha]
address = "${A[$m]}"
hosts = [$hosts]
TOML
        "$TB" run "$m" -- systemctl restart hostd.service || return 1
    done
    local endpoints="" ok=""
    for m in "$@"; do endpoints+="${endpoints:+,}https://${A[$m]}:2379"; done
    # As hostd: its client certificate for etcd (CN root).
    local tls=(--cacert /var/lib/hostd/ca/ca.crt --cert /var/lib/hostd/ha/etcd-root.crt --key /var/lib/hostd/ha/etcd-root.key)
    for _ in $(seq 240); do
        [ "$("$TB" run "$first" -- etcdctl "${tls[@]}" --endpoints="$endpoints" endpoint health 2>&1 | grep -c 'is healthy')" = $# ] && { ok=1; break; }
        sleep 0.5
    done
    [ -n "$ok" ] || { echo "# etcd is not healthy on $*" >&2; return 1; }
    for m in "$@"; do
        ok=""
        for _ in $(seq 120); do
            [ "$("$TB" run "$m" -- journalctl -u hostd.service --no-pager | grep -c "serves this host's peer requests")" -ge $(($# - 1)) ] && { ok=1; break; }
            sleep 0.5
        done
        [ -n "$ok" ] || { echo "# $m's hostd was not served by every other host" >&2; return 1; }
    done
}
