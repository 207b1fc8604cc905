#!/usr/bin/env bash
# Every hostctl command's --help carries an example, and the man page and the completion
# script (both generated from the same definitions) name every command.
set -u
hostctl=$1
fail=0
cmds=$("$hostctl" --help | sed -n '/^Subcommands:/,$p' | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p')
[ -n "$cmds" ] || { echo "no commands found in hostctl --help"; exit 1; }
man=$("$hostctl" man)
comp=$("$hostctl" completion bash)
for c in $cmds; do
    "$hostctl" "$c" --help | grep -q '^Example: hostctl\|^Example: psql' || { echo "$c --help has no example"; fail=1; }
    grep -q "^\.SS \"$c[ \"]" <<<"$man" || { echo "man page lacks $c"; fail=1; }
    grep -q "^        $c) words=" <<<"$comp" || { echo "completion lacks $c"; fail=1; }
done
bash -n <(echo "$comp") || { echo "completion script is not valid bash"; fail=1; }
# The completion completes: 'hostctl cr<TAB>' → create, 'hostctl delete --p<TAB>' → --purge --purge-backups,
# option values: 'hostctl create a --filesystem <TAB>' → ext4 xfs.
out=$(bash -c "$comp"'
COMP_WORDS=(hostctl cr); COMP_CWORD=1; _hostctl; echo "${COMPREPLY[*]}"
COMP_WORDS=(hostctl delete --p); COMP_CWORD=2; _hostctl; echo "${COMPREPLY[*]}"
COMP_WORDS=(hostctl create a --filesystem ""); COMP_CWORD=4; _hostctl; echo "${COMPREPLY[*]}"
COMP_WORDS=(hostctl create a --backend d); COMP_CWORD=4; _hostctl; echo "${COMPREPLY[*]}"')
[ "$out" = $'create\n--purge --purge-backups\next4 xfs\ndevice' ] || { echo "completion gave: $out"; fail=1; }
if command -v man >/dev/null; then
    warnings=$(man --warnings -l - <<<"$man" 2>&1 >/dev/null)
    [ -z "$warnings" ] || { echo "man reports: $warnings"; fail=1; }
fi
echo "commands checked: $(echo $cmds)"
exit $fail
