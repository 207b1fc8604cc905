# A tenant binds only its own port (issue 18, item 4). Sourced by tests/e2e/hostile.
# hostd's port watch kills a tenant's listener on any other port; ALTER SYSTEM cannot move the
# port, listen address, socket directory or TLS files (they are on postgres's command line).

check "two tenants for the port cases" bash -c "$TB run $TB_NAME -- hostctl create porta >/dev/null 2>&1 && $TB run $TB_NAME -- hostctl create portb >/dev/null 2>&1"
a_port=$(in_tb hostctl --json show porta | python3 -c 'import json,sys; print(json.load(sys.stdin)["tenant"]["port"])')
b_port=$(in_tb hostctl --json show portb | python3 -c 'import json,sys; print(json.load(sys.stdin)["tenant"]["port"])')
listening() { in_tb ss -Htln "sport = :$1" | grep -q LISTEN; }
# A listener run by tenant porta's superuser, as the review did: COPY ... FROM PROGRAM, in the background.
squat() {
    sql porta "create temp table o(x text); copy o from program \$p\$python3 -c 'import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((\"127.0.0.1\", $1)); s.listen(); time.sleep(120)' >/dev/null 2>&1 & echo started\$p\$" >/dev/null
}
set_watch() {  # set_watch SECONDS|default: restarts hostd with guard.listeners_interval
    in_tb sed -i '/^# hostile-ports$/,$d' /etc/hostd/hostd.toml
    [ "$1" = default ] || in_tb sh -c "printf '# hostile-ports\n[guard]\nlisteners_interval = $1\n' >>/etc/hostd/hostd.toml"
    in_tb systemctl restart hostd.service && hostctl list >/dev/null
}

set_watch 0
squat 29999
sleep 2
check "without the watch, a tenant's superuser listens on a free port (the defect)" listening 29999
set_watch default
sleep 3
check "with it, hostd kills that listener" bash -c "! { $(declare -f in_tb listening); TB=$TB TB_NAME=$TB_NAME listening 29999; }"
check "and says so in the journal, naming the tenant and the port" bash -c \
    "$TB run $TB_NAME -- journalctl -u hostd TENANT=porta --no-pager -o cat | grep -q 'listened on 127.0.0.1:29999, not on its own port $a_port'"
check "the tenant itself keeps serving" eq "$(sql porta 'select 1')" 1

in_tb systemctl stop hostd-postgres@portb.service
squat "$b_port"
sleep 3
check "a squat on another tenant's port while it is down is killed" bash -c "! { $(declare -f in_tb listening); TB=$TB TB_NAME=$TB_NAME listening $b_port; }"
in_tb systemctl start hostd-postgres@portb.service
check "and that tenant serves its own clients again" eq "$(sql portb 'select 1')" 1

sql porta "alter system set port = 29998" >/dev/null
sql porta "alter system set listen_addresses = '*'" >/dev/null
sql porta "alter system set unix_socket_directories = '/tmp'" >/dev/null
in_tb systemctl restart hostd-postgres@porta.service
check "ALTER SYSTEM SET port + restart: still on its own port" eq "$(sql porta 'show port')" "$a_port"
check "listen_addresses and the socket directory stay hostd's" eq "$(sql porta "select current_setting('listen_addresses') || ' ' || current_setting('unix_socket_directories')")" \
    "127.0.0.1 /run/hostd-tenant/porta"
check "nothing listens on the port it asked for" bash -c "! { $(declare -f in_tb listening); TB=$TB TB_NAME=$TB_NAME listening 29998; }"
check "the tenant is up in hostctl show" bash -c "$TB run $TB_NAME -- hostctl show porta | grep -q 'unit_state: *active'"

hostctl delete porta --purge --yes >/dev/null
hostctl delete portb --purge --yes >/dev/null
