#!/usr/bin/env bash
# Install git-cvfs from this checkout.
#
#   ./install.sh          into its own virtual environment, with `git-cvfs` linked
#                         into ~/.local/bin and the git filter set in ~/.gitconfig
#   ./install.sh --dev    a development environment in ./.venv with the test tools (pre-commit
#                         among them), Azurite (npm) in ./.cache/azurite for the Azure tests,
#                         and Husky and lefthook (npm) in ./.cache/hook-managers
#
# Running it again upgrades in place; nothing is duplicated.
set -euo pipefail

src=$(cd "$(dirname "$0")" && pwd)
mode=user
git_config=1
for arg in "$@"; do
    case "$arg" in
        --dev) mode=dev ;;
        --no-git-config) git_config=0 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "error: unknown option $arg" >&2; echo "hint: ./install.sh [--dev] [--no-git-config]" >&2; exit 2 ;;
    esac
done

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "error: git-cvfs needs Python 3.10 or newer ($python is $("$python" --version 2>&1))" >&2
    echo "hint: install a newer Python, or run PYTHON=/path/to/python3.11 ./install.sh" >&2
    exit 2
fi
command -v git >/dev/null || { echo "error: git is not installed" >&2; echo "hint: apt-get install git" >&2; exit 2; }

say() { echo "install.sh: $*"; }

make_venv() {
    if [ -x "$1/bin/python" ]; then
        say "reusing virtual environment $1"
    else
        "$python" -m venv "$1"
        say "created virtual environment $1"
    fi
    "$1/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
}

if [ "$mode" = dev ]; then
    venv="$src/.venv"
    make_venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$src[test]"
    say "installed git-cvfs (editable) and the test tools into $venv"
    # Azurite, the Azure Blob emulator the tests run against, comes from npm.
    azurite="$src/.cache/azurite"
    if [ -x "$azurite/node_modules/.bin/azurite-blob" ]; then
        say "reusing Azurite in $azurite"
    else
        command -v npm >/dev/null || { echo "error: npm is needed for Azurite (the Azure test server)" >&2; echo "hint: apt-get install nodejs npm" >&2; exit 2; }
        npm install --prefix "$azurite" azurite --no-audit --no-fund --silent
        say "installed Azurite into $azurite"
    fi
    # The hook managers the tests run against, for real: Husky and lefthook from npm (pinned).
    managers="$src/.cache/hook-managers"
    if [ -x "$managers/node_modules/.bin/husky" ] && [ -x "$managers/node_modules/.bin/lefthook" ]; then
        say "reusing Husky and lefthook in $managers"
    else
        # --ignore-scripts: lefthook's postinstall runs `lefthook install` in the git repository
        # around node_modules, which is this checkout; the tests install it where they want it.
        npm install --prefix "$managers" -E husky@9.1.7 lefthook@2.2.1 --no-audit --no-fund --silent --ignore-scripts
        say "installed Husky and lefthook into $managers"
    fi
    # libfuse 3 and fusermount3, for `git cvfs mount` and its tests on a real FUSE mount.
    if ! command -v fusermount3 >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            (apt-get update -qq && apt-get install -y -qq fuse3) >/dev/null
            say "installed fuse3 (libfuse 3, fusermount3) with apt-get"
        else
            echo "warning: fuse3 is not installed: git cvfs mount and its tests need it (sudo apt-get install fuse3)" >&2
        fi
    fi
    # libfaketime, for the test of gc on a machine whose clock runs ahead of the archive's.
    if ! ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            (apt-get update -qq && apt-get install -y -qq faketime) >/dev/null
            say "installed faketime (libfaketime) with apt-get"
        else
            echo "warning: libfaketime is not installed: a gc test needs it (sudo apt-get install faketime)" >&2
        fi
    fi
    # Git LFS, for the tests of `git cvfs migrate import --from-lfs` (real git-lfs history) and
    # the benchmarks that measure against it.
    if ! command -v git-lfs >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            (apt-get update -qq && apt-get install -y -qq git-lfs) >/dev/null
            say "installed git-lfs with apt-get"
        else
            echo "warning: git-lfs is not installed: the --from-lfs tests need it (sudo apt-get install git-lfs)" >&2
        fi
    fi
    # An editable install leaves pip's data files out: link the man pages where man looks
    # for the programs in .venv/bin (git help cvfs, git cvfs --help).
    mkdir -p "$venv/share/man/man1"
    ln -sfn "$src"/docs/man/*.1 "$venv/share/man/man1/"
    say "run the tests with: .venv/bin/python -m pytest -n 4"
    exit 0
fi

home=${GIT_CVFS_HOME:-${XDG_DATA_HOME:-$HOME/.local/share}/git-cvfs}
bindir=${GIT_CVFS_BIN:-$HOME/.local/bin}
venv="$home/venv"
mkdir -p "$home" "$bindir"
make_venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade --force-reinstall --no-deps "$src"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "$src"
say "installed $("$venv/bin/git-cvfs" --version) into $venv"
ln -sfn "$venv/bin/git-cvfs" "$bindir/git-cvfs"
say "linked $bindir/git-cvfs"
# The man pages, where man looks for the programs in $bindir (`git help cvfs`, `git cvfs --help`).
mandir=${GIT_CVFS_MANDIR:-$(dirname "$bindir")/share/man/man1}
mkdir -p "$mandir"
for page in "$mandir"/git-cvfs*.1; do  # pages of commands that are gone
    [ -L "$page" ] && [ ! -e "$page" ] && rm -f "$page"
done
ln -sfn "$venv"/share/man/man1/git-cvfs*.1 "$mandir/"
say "linked the man pages into $mandir"
if [ "$git_config" = 1 ]; then
    "$venv/bin/git-cvfs" install --global 2>&1 | sed 's/^/install.sh: /'
fi
case ":$PATH:" in
    *":$bindir:"*) say "done: try it with \`git cvfs try\`" ;;
    *)
        case "${SHELL:-}" in
            */zsh) profile="~/.zshrc" ;;
            */fish) profile="" ;;
            *) profile="~/.bashrc" ;;
        esac
        say "done, but $bindir is not on your PATH, so new shells will not find git-cvfs."
        if [ -n "$profile" ]; then
            say "add it for every new shell with:"
            echo "    echo 'export PATH=\"$bindir:\$PATH\"' >> $profile"
        else
            say "add it for every new shell with:"
            echo "    fish_add_path $bindir"
        fi
        say "then open a new shell (or run: export PATH=\"$bindir:\$PATH\") and try it with \`git cvfs try\`"
        ;;
esac
