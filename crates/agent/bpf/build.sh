#!/usr/bin/env bash
# Rebuilds the committed eBPF object from its source, with the flags of ../build.rs (machines
# without clang build the agent with this object).
set -euo pipefail
cd "$(dirname "$0")"
"${CLANG:-clang}" -target bpf -O2 -g -Wall -Werror -fdebug-prefix-map="$PWD=." \
  -fdebug-compilation-dir=. -c process.bpf.c -o process.bpf.o
