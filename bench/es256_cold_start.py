"""Cold-start cost of ES256 ID-token verification (issue 16, LIFF tokens): a fresh interpreter
imports what one verification needs and verifies one token, beside a bare ``import boto3``
timed the same way, interleaved in the same run (median of N runs, warm ``.pyc``).

    python bench/es256_cold_start.py [--runs 9]

Cells: ``boto3`` (the baseline); ``cryptography`` (the ECDSA primitives tsunagu's own JOSE
checks use: ``tsunagu.coupons.es256``); ``joserfc`` (the same verification with joserfc's
JWT API). Each verifying cell checks one real ES256 token, so a lazy import inside the
library is paid too."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

SNIPPET = """
import time
t0 = time.perf_counter()
{body}
print((time.perf_counter() - t0) * 1000)
"""


def token_and_jwk() -> tuple[str, dict[str, str]]:
    from joserfc import jwt
    from joserfc.jwk import ECKey

    key = ECKey.generate_key("P-256", parameters={"kid": "k1"})
    token = jwt.encode({"alg": "ES256", "kid": "k1"}, {"sub": "U1"}, key)
    return token, key.as_dict(private=False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()
    token, jwk = token_and_jwk()
    bodies = {
        "boto3": "import boto3",
        "cryptography (tsunagu.coupons.es256)": (
            f"from tsunagu.coupons.es256 import verify_es256\nassert verify_es256({token!r}, {jwk!r})"
        ),
        "joserfc": (
            "from joserfc import jwt\nfrom joserfc.jwk import ECKey\n"
            f"jwt.decode({token!r}, ECKey.import_key({jwk!r}), algorithms=['ES256'])"
        ),
    }
    samples: dict[str, list[float]] = {k: [] for k in bodies}
    env = {**os.environ, "PYTHONPATH": "layers/tsunagu" + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for _ in range(args.runs):  # interleaved rounds: drift on a shared machine hits every cell alike
        for name, body in bodies.items():
            out = subprocess.run(
                [sys.executable, "-c", SNIPPET.format(body=body)], env=env, check=True, capture_output=True, text=True
            )
            samples[name].append(float(out.stdout.strip().splitlines()[-1]))
    base = statistics.median(samples["boto3"])
    print(f"runs per cell: {args.runs} (median); python {sys.version.split()[0]}")
    print("| import + one ES256 verification | median (ms) | x import boto3 |")
    print("|---|---:|---:|")
    for name, xs in samples.items():
        m = statistics.median(xs)
        print(f"| {name} | {m:.1f} | {m / base:.2f} |")


if __name__ == "__main__":
    main()
