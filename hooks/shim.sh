#!/bin/sh
# git-cvfs hook shim (ID: git-cvfs-hook-shim, version @VERSION@)
# Written by `git cvfs install`, removed by `git cvfs uninstall`; edits are lost on upgrade.
# A hook that was here before git-cvfs was moved to "@HOOK@.pre-cvfs"; it runs first.
case $0 in */*) hook_dir=${0%/*} ;; *) hook_dir=. ;; esac  # dirname without a fork
cvfs='@GIT_CVFS@'
[ -x "$cvfs" ] || cvfs=$(command -v git-cvfs) || cvfs=
if [ -z "$cvfs" ]; then
    echo "error: this repository uses git-cvfs, but git-cvfs is not installed or not on PATH" >&2
    echo "hint: install it (./install.sh in the git-cvfs source), or remove $hook_dir/@HOOK@" >&2
    exit @MISSING_EXIT@
fi
legacy="$hook_dir/@HOOK@.pre-cvfs"
if [ -x "$legacy" ]; then
    if [ @READS_STDIN@ = 1 ]; then
        input=$(cat)
        printf '%s\n' "$input" | "$legacy" "$@" || exit $?
        printf '%s\n' "$input" | "$cvfs" hook-impl @HOOK@ "$@"
        exit $?
    fi
    "$legacy" "$@" || exit $?
fi
exec "$cvfs" hook-impl @HOOK@ "$@"
