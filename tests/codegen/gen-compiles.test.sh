#!/usr/bin/env bash
# The generated stubs and route table of gen/ compile with no warning under
# gcc and clang, each header on its own too.
exec "$(dirname "$0")/../../tools/check-gen-compiles.sh"
