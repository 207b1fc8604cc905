#!/usr/bin/env bash
# cmake --install into a fresh DESTDIR puts every file in its conventional place, and nothing
# under the tenants' data directories.
set -u
build=$1
dest=$(mktemp -d /tmp/hostd-install-test.XXXXXX)
trap 'rm -rf "$dest"' EXIT
# Never without a DESTDIR: that would install onto this machine.
[ -n "$dest" ] && [ -d "$dest" ] || exit 1
DESTDIR=$dest cmake --install "$build" >/dev/null || { echo "cmake --install failed"; exit 1; }
got=$(cd "$dest" && find . \( -type f -o -type l \) | sed 's|^\./|/|' | sort)
want=$(sort <<'LIST'
/etc/haproxy/hostd.cfg
/etc/hostd/hostd.toml
/usr/bin/hostctl
/usr/lib/systemd/system/haproxy.service.d/hostd.conf
/usr/lib/systemd/system/hostd-etcd.service
/usr/lib/systemd/system/hostd-postgres@.service
/usr/lib/systemd/system/hostd.service
/usr/lib/systemd/system/hostd.socket
/usr/lib/systemd/journald.conf.d/hostd.conf
/usr/lib/sysusers.d/hostd.conf
/usr/sbin/hostd
/usr/share/bash-completion/completions/hostctl
/usr/share/hostd/hostd.toml.default
/usr/share/man/man1/hostctl.1
/usr/share/man/man8/hostd.8
LIST
)
fail=0
[ "$got" = "$want" ] || { echo "installed files differ:"; diff <(echo "$want") <(echo "$got"); fail=1; }
# The default config is the commented one, and an operator's edit survives a reinstall.
grep -q '^#' "$dest/etc/hostd/hostd.toml" || { echo "hostd.toml has no comments"; fail=1; }
echo '# edited' >>"$dest/etc/hostd/hostd.toml"
DESTDIR=$dest cmake --install "$build" >/dev/null
grep -q '^# edited$' "$dest/etc/hostd/hostd.toml" || { echo "reinstall overwrote /etc/hostd/hostd.toml"; fail=1; }
# The manifest lists what uninstall removes: never state or tenants' data.
if grep -E '/var/lib/hostd|/srv/hostd' "$build/install_manifest.txt"; then echo "manifest names tenant data"; fail=1; fi
exit $fail
