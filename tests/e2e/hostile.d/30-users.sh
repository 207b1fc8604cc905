# Issue 18, items 6, 9 and 11 (sourced by tests/e2e/hostile): hostd removes only what it made
# (OS users, mounts), tenant uids come from a range that holds thousands, detached tenants'
# ports are reported, secrets stay off command lines, a missing API group stops hostd.

users_hostd_up() { for _ in $(seq 100); do in_tb hostctl list >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
users_field() {  # users_field NAME KEY: one field of GET /v1/tenants/NAME
    in_tb hostctl --json show "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)['tenant']['$2'])"
}
users_host() { in_tb curl -s --unix-socket /run/hostd/hostd.sock http://localhost/v1/host |
    python3 -c "import json,sys; print(json.load(sys.stdin)['host']['$1'])"; }

echo "# a tenant whose OS user name is the system's: refused, and the system's user stays"
apt_before=$(in_tb getent passwd _apt)
in_tb hostctl create apt >/dev/null 2>/tmp/hostd-users-apt.err
apt_code=$?
check "hostctl create apt fails with a conflict (exit 4)" eq "$apt_code" 4
check "... that names _apt and says it is not hostd's" grep -q "'_apt' already exists and is not hostd's" /tmp/hostd-users-apt.err
check "... and Debian's _apt is untouched" eq "$(in_tb getent passwd _apt)" "$apt_before"
check "... and nothing of tenant apt was made" bash -c "! $TB run $TB_NAME -- test -e /var/lib/hostd/tenants/apt.toml && ! $TB run $TB_NAME -- test -e /var/lib/hostd/loop/apt.img"

echo "# a crash at the user step, the name taken meanwhile by a user hostd did not make: reconcile keeps it"
# hostd must stay down after the kill until the foreign user exists (no Restart= behind our back).
in_tb mkdir -p /run/systemd/system/hostd.service.d
in_tb sh -c 'printf "[Service]\nRestart=no\n" > /run/systemd/system/hostd.service.d/users-crash.conf'
in_tb systemctl daemon-reload
users_crash() {  # users_crash POINT NAME [COMMAND...]: create NAME, hostd killed at POINT; COMMAND runs while it is down
    local point=$1 name=$2
    shift 2
    in_tb systemctl set-environment HOSTD_CRASH_AT="$point"
    in_tb systemctl restart hostd
    # The full path (a size no pool disk has): a create on a pool disk makes its OS user beside
    # the disk, before these points (the pool's case is below).
    in_tb hostctl create "$name" --disk-size ${USERS_CRASH_SIZE:-512M} >/dev/null 2>&1
    in_tb systemctl unset-environment HOSTD_CRASH_AT
    for _ in $(seq 50); do [ "$(in_tb systemctl is-active hostd)" != active ] && break; sleep 0.1; done
    [ $# -gt 0 ] && "$@"
    in_tb systemctl reset-failed hostd.service hostd.socket >/dev/null 2>&1
    in_tb systemctl start hostd.socket hostd.service
    users_hostd_up
}
for point in create:before:user create:after:mount; do
    users_crash "$point" squat in_tb useradd --system --no-create-home --shell /usr/sbin/nologin _squat
    check "$point: hostd died there" bash -c "$TB run $TB_NAME -- journalctl -u hostd --no-pager -n 200 -o cat | grep -q 'killing hostd at $point'"
    check "$point: the rolled-back create is gone" bash -c "$TB run $TB_NAME -- hostctl show squat >/dev/null 2>&1; [ \$? = 3 ]"
    check "$point: the OS user hostd did not make is still there" in_tb getent passwd _squat
    in_tb userdel _squat
done
users_crash create:after:user mine
check "create:after:user: the OS user hostd made is removed by the rollback" bash -c "! $TB run $TB_NAME -- getent passwd _mine"
USERS_CRASH_SIZE=1G users_crash create:before:user pooled
check "a pool create cut off before its user step: the OS user made beside its disk is removed too" bash -c "! $TB run $TB_NAME -- getent passwd _pooled"
in_tb rm -f /run/systemd/system/hostd.service.d/users-crash.conf
in_tb systemctl daemon-reload

echo "# a mount below mount_root that is no tenant's survives the orphan sweep"
in_tb in-hostd sh -c 'mkdir -p /srv/hostd/scratch && mount -t tmpfs -o size=1m tmpfs /srv/hostd/scratch'
in_tb hostctl reconcile >/dev/null
check "the operator's mount at /srv/hostd/scratch is still mounted" in_tb in-hostd findmnt /srv/hostd/scratch
in_tb in-hostd sh -c 'umount /srv/hostd/scratch; rmdir /srv/hostd/scratch'

echo "# tenant uids and gids come from users.ids (65536-99999), and run sandboxed"
in_tb hostctl create uidt --memory 128M >/dev/null 2>&1
uid=$(in_tb id -u _uidt)
gid=$(in_tb id -g _uidt)
check "the tenant's uid ($uid) is in 65536-99999" bash -c "[ '$uid' -ge 65536 ] && [ '$uid' -le 99999 ]"
check "its gid ($gid) too" bash -c "[ '$gid' -ge 65536 ] && [ '$gid' -le 99999 ]"
check "PostgreSQL runs as it under PrivateUsers=yes" eq "$(sql uidt "create temp table i(t text); copy i from program 'id -u'; select t from i")" "$uid"
check "its data directory belongs to it" eq "$(in_tb in-hostd stat -c %u:%g /srv/hostd/uidt/pgdata)" "$uid:$gid"

echo "# hostctl psql puts no password on a command line"
pw=$(users_field uidt password)
in_tb sh -c 'hostctl psql uidt -- -XAtqc "select pg_sleep(3)" >/dev/null 2>&1 & sleep 1.5; ps -eo args; wait' >/tmp/hostd-users-ps.out
check "psql was running" grep -q "psql postgresql://uidt@" /tmp/hostd-users-ps.out
check "ps -eo args shows no password" bash -c "[ -n '$pw' ] && ! grep -q -- '$pw' /tmp/hostd-users-ps.out"
check "hostctl psql still logs in" eq "$(in_tb hostctl psql uidt -- -XAtqc 'select current_user')" uidt

echo "# ports held by detached tenants are reported, and a purge frees them"
free0=$(users_host ports_free)
in_tb hostctl delete uidt >/dev/null
check "GET /v1/host reports the detached tenant's ports" eq "$(users_host ports_detached)" 1
check "... still held (ports_free unchanged)" eq "$(users_host ports_free)" "$free0"
in_tb hostctl delete uidt --purge --yes >/dev/null
check "a purge frees them" eq "$(users_host ports_detached)" 0
check "... ports_free grows by one" eq "$(users_host ports_free)" "$((free0 + 1))"

echo "# users.ids is honoured, and a full range says so"
in_tb cp /etc/hostd/hostd.toml /tmp/hostd-users.toml
in_tb sh -c 'printf "\n[users]\nids = \"70000-70000\"\n" >> /etc/hostd/hostd.toml'
in_tb systemctl restart hostd
users_hostd_up
in_tb hostctl create one --memory 128M >/dev/null 2>&1
check "the one id of a one-id range goes to the first tenant" eq "$(in_tb id -u _one):$(in_tb id -g _one)" 70000:70000
in_tb hostctl create two --memory 128M >/dev/null 2>/tmp/hostd-users-two.err
check "the next create fails saying the range is full and what to do" \
    bash -c "grep -q 'No free uid/gid left in 70000-70000' /tmp/hostd-users-two.err && grep -q 'widen users.ids' /tmp/hostd-users-two.err"
check "... and leaves nothing of it" bash -c "! $TB run $TB_NAME -- getent passwd _two && ! $TB run $TB_NAME -- test -e /var/lib/hostd/tenants/two.toml"
in_tb hostctl delete one --purge --yes >/dev/null
in_tb cp /tmp/hostd-users.toml /etc/hostd/hostd.toml
in_tb systemctl restart hostd
users_hostd_up

echo "# a missing API group stops hostd with what to do"
in_tb sh -c 'printf "\n[api]\ngroup = \"nosuchgroup\"\n" >> /etc/hostd/hostd.toml'
in_tb systemctl restart hostd >/dev/null 2>&1
for _ in $(seq 50); do [ "$(in_tb systemctl is-active hostd)" != active ] && break; sleep 0.1; done
check "hostd does not start" bash -c "[ \"\$($TB run $TB_NAME -- systemctl is-active hostd)\" != active ]"
check "its journal names the group and what to do" bash -c "$TB run $TB_NAME -- journalctl -u hostd --no-pager -n 50 -o cat | grep \"API group 'nosuchgroup'\" | grep -q systemd-sysusers"
in_tb cp /tmp/hostd-users.toml /etc/hostd/hostd.toml
in_tb systemctl reset-failed hostd.service hostd.socket >/dev/null 2>&1
in_tb systemctl start hostd.socket hostd.service
check "with the group back hostd serves again" users_hostd_up
