# Monitoring cannot be hijacked or blinded by a tenant (issue 18, item 5). Sourced by
# tests/e2e/hostile. hostd's checks and metrics use a login of its own (peer over the tenant's
# socket, search_path pg_catalog, statement and lock timeouts); up is PQping, no login at all.

metric() {  # metric NAME TENANT: the sample's value in /metrics, or nothing
    in_tb curl -s --unix-socket /run/hostd/hostd.sock http://localhost/metrics |
        sed -n "s/^$1{tenant=\"$2\"} \(.*\)$/\1/p"
}
refreshed() {  # refreshed NAME TENANT VALUE: waits (up to 15 s) for the background refresh to show it
    for _ in $(seq 30); do [ "$(metric "$1" "$2")" = "$3" ] && return 0; sleep 0.5; done
    echo "$1{tenant=\"$2\"} is '$(metric "$1" "$2")', not '$3'"; return 1
}
absent() { for _ in $(seq 30); do [ -z "$(metric "$1" "$2")" ] && return 0; sleep 0.5; done; return 1; }

check "a tenant to watch" bash -c "$TB run $TB_NAME -- hostctl create watched >/dev/null 2>&1"
check "hostd's own login works on a new tenant" bash -c \
    "$TB run $TB_NAME -- in-hostd psql -h /run/hostd-tenant/watched -p \$($TB run $TB_NAME -- hostctl --json show watched | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"tenant\"][\"port\"])') -U hostd -d postgres -XAtc 'select 1' | grep -qx 1"
check "the refresh reports it up" refreshed hostd_tenant_up watched 1

sql watched "create schema evil; create view evil.pg_stat_activity as select g as pid, 'client backend'::text as backend_type from generate_series(1, 999) g; alter role hostd set search_path = evil, pg_catalog; alter role hostd set statement_timeout = 0; alter role watched set search_path = evil, pg_catalog" >/dev/null
sleep 6
conn=$(metric hostd_tenant_connections watched)
check "a look-alike pg_stat_activity in the roles' search_path is not what hostd reads (got '$conn' connections; the fake says 999)" bash -c "[ -n '$conn' ] && [ '$conn' -lt 999 ]"

sql watched "drop owned by hostd; drop role hostd" >/dev/null
check "a tenant that drops hostd's role is still up" refreshed hostd_tenant_up watched 1
check "... with its facts unknown, not made up" absent hostd_tenant_connections watched
check "hostctl set still works" bash -c "$TB run $TB_NAME -- hostctl set watched --memory 300M >/dev/null"
check "a reconcile gives hostd its login back" bash -c "$TB run $TB_NAME -- hostctl reconcile >/dev/null && \
    $TB run $TB_NAME -- in-hostd psql -h /run/hostd-tenant/watched -p \$($TB run $TB_NAME -- hostctl --json show watched | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"tenant\"][\"port\"])') -U hostd -d postgres -XAtc 'select 1' | grep -qx 1"

# The review's case: the tenant changes its own admin password.
sql watched "alter role watched password 'changed-by-the-tenant'" >/dev/null
check "after the tenant changes its admin password, hostctl set works" bash -c "$TB run $TB_NAME -- hostctl set watched --memory 320M >/dev/null"
check "... and the tenant is still reported up" refreshed hostd_tenant_up watched 1
check "... with its facts" bash -c "for _ in \$(seq 30); do [ -n \"\$($(declare -f in_tb metric); TB=$TB TB_NAME=$TB_NAME metric hostd_tenant_max_connections watched)\" ] && exit 0; sleep 0.5; done; exit 1"

in_tb systemctl stop hostd-postgres@watched.service
check "a tenant that is down is reported down" refreshed hostd_tenant_up watched 0
in_tb systemctl start hostd-postgres@watched.service
hostctl delete watched --purge --yes >/dev/null
