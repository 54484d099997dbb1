"""Constant load on one HTTPS endpoint until stdin closes; standard library only, so it runs on any host with
python3 (bench/rollout.py runs it on the sandbox's bastion, next to the targets).

    python3 load.py URL BODY_FILE CA_FILE [CONNECTIONS] [RATE_PER_CONNECTION]  < a pipe you close to stop

Each connection is a keep-alive HTTPS client that POSTs BODY every 1/RATE s (an open-loop pace, so a slow answer
does not lower the offered load). Prints one JSON line per request: [start, seconds, status or error].
"""

from __future__ import annotations

import http.client
import json
import ssl
import sys
import threading
import time
from urllib.parse import urlsplit


def client(url: str, body: bytes, context: ssl.SSLContext, rate: float, stop: threading.Event, out: list) -> None:
    parts = urlsplit(url)
    connection = None
    next_at = time.monotonic()
    while not stop.is_set():
        started = time.time()
        t0 = time.perf_counter()
        try:
            if connection is None:
                connection = http.client.HTTPSConnection(
                    parts.hostname or "localhost", parts.port or 443, context=context, timeout=10
                )
            connection.request("POST", parts.path, body, {"content-type": "application/json"})
            answer = connection.getresponse()
            answer.read()
            outcome: int | str = answer.status
            if answer.getheader("connection", "").lower() == "close":
                connection.close()
                connection = None
        except (OSError, http.client.HTTPException) as exc:
            outcome = type(exc).__name__
            if connection is not None:
                connection.close()
            connection = None
        out.append([round(started, 4), round(time.perf_counter() - t0, 5), outcome])
        next_at += 1.0 / rate
        time.sleep(max(0.0, next_at - time.monotonic()))


def main() -> None:
    url, body_file, ca_file = sys.argv[1:4]
    connections = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    rate = float(sys.argv[5]) if len(sys.argv) > 5 else 20.0
    context = ssl.create_default_context(cafile=ca_file)
    body = open(body_file, "rb").read()
    stop = threading.Event()
    results: list = []
    threads = [
        threading.Thread(target=client, args=(url, body, context, rate, stop, results), daemon=True)
        for _ in range(connections)
    ]
    for thread in threads:
        thread.start()
    sys.stdin.read()  # until the caller closes the pipe
    stop.set()
    for thread in threads:
        thread.join(timeout=15)
    for row in sorted(results):
        print(json.dumps(row))


if __name__ == "__main__":
    main()
