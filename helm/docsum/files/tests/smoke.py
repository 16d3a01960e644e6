"""`helm test`: each service's /readyz, then one summary through the gateway with an API key.

Runs in the gateway's image (the standard library only). READYZ: the URLs to check, space
separated; SUMMARIZE: the gateway's summarize URL; KEY_FILE: a file holding an API key (absent:
the summary is skipped and said so). Exit 1 when a check fails; one JSON line per check.
"""

import json
import os
import sys
import urllib.error
import urllib.request

TEXT = (
    "The city council approved a new budget on Tuesday after months of debate. "
    "The budget raises spending on schools by four per cent. The weather was sunny."
)


def call(url: str, body: bytes | None = None, key: str = "") -> tuple[int, str]:
    headers = {"content-type": "application/json"}
    if key:
        headers["x-api-key"] = key
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def report(**fields: object) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")


def main() -> int:
    failed = False
    for url in os.environ["READYZ"].split():
        status, body = call(url)
        report(check=url, status=status, body=body[:300])
        failed |= status != 200
    key_file = os.environ.get("KEY_FILE", "")
    if not os.path.exists(key_file):
        report(check="summarize", skipped="no API key (tests.apiKey)")
        return 1 if failed else 0
    with open(key_file) as f:
        key = f.read().strip()
    request = json.dumps({"text": TEXT, "max_sentences": 1}).encode()
    status, body = call(os.environ["SUMMARIZE"], request, key)
    try:
        ok = status == 200 and bool(json.loads(body).get("summary"))
    except ValueError:
        ok = False
    report(check="summarize", status=status, body=body[:300])
    return 1 if failed or not ok else 0


if __name__ == "__main__":
    sys.exit(main())
