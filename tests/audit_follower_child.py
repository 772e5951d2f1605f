"""Child process for the audit-stream test: follow the daemon's WebSocket, print each row as it comes."""

from __future__ import annotations

import sys

from websockets.sync.client import connect


def main(url: str, token: str, count: int) -> None:
    with connect(url, additional_headers={"Authorization": f"Bearer {token}"}, proxy=None, open_timeout=10) as socket:
        print("connected", flush=True)
        for _ in range(count):
            print(socket.recv(timeout=60), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
