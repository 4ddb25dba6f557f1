#!/usr/bin/env bash
# clang-format check over every C++ file of ours (the config is .clang-format).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.cc' '*.h' 2>/dev/null || find runtime driver glance_adapter tests -name '*.cc' -o -name '*.h')
if ((${#files[@]} == 0)); then exit 0; fi
if ! clang-format --dry-run --Werror "${files[@]}" 2>/tmp/berth-format.log; then
  head -40 /tmp/berth-format.log
  echo "format check: run 'clang-format -i' on the files above" >&2
  exit 1
fi
echo "format check: ${#files[@]} files clean"
