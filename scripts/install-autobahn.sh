#!/bin/sh
# Install Autobahn|Testsuite 0.8.2 (Python 2.7 only) into .autobahn/ (git-ignored),
# for the opt-in conformance test tests/server/test_autobahn.py (see docs/conformance.md).
#
#   scripts/install-autobahn.sh            # uses $PYTHON2, else pyenv 2.7.18, python2.7 or python2
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
target="${AUTOBAHN_DIR:-$root/.autobahn}"
py="${PYTHON2:-}"
if [ -z "$py" ]; then
    for cand in "$HOME/.pyenv/versions/2.7.18/bin/python" python2.7 python2; do
        # pyenv shims exist even when the version is not selected: try to run it.
        if "$cand" -c 'import sys; assert sys.version_info[:2] == (2, 7)' >/dev/null 2>&1; then
            py=$(command -v "$cand")
            break
        fi
    done
    if [ -z "$py" ]; then
        echo "install-autobahn: no Python 2.7 found (set PYTHON2)" >&2
        exit 1
    fi
fi
mkdir -p "$target"
"$py" -m pip install --disable-pip-version-check --target "$target" autobahntestsuite==0.8.2
echo "$py" > "$target/PYTHON"
echo "Autobahn|Testsuite installed in $target (python: $py)"
