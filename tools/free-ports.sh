#!/usr/bin/env bash
# tools/free-ports.sh [N] - print N (default 1) TCP ports of 127.0.0.1 that
# the kernel says are free now, on one line. Tests and deploy/local/up.sh
# take their ports so: random ones collided with other clusters on a busy
# machine. A port may still be taken before its user binds it.
set -euo pipefail
python3 -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])' "${1:-1}"
