"""``python -m tsunagu_local demo|serve|invoke NAME|fire-schedules|seed`` - see README."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading

from tsunagu_local.client import request


def main() -> None:
    ap = argparse.ArgumentParser(prog="tsunagu_local")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("demo", help="start the stack, walk through the main job, stop")
    s = sub.add_parser("serve", help="serve the local stack in the foreground")
    s.add_argument("--log-level", default="INFO")
    s.add_argument("--no-pollers", action="store_true", help="don't consume the queues (benchmarks of the intake)")
    s.add_argument("--console-demo", action="store_true", help="create a demo account and print a console login")
    i = sub.add_parser("invoke", help="trigger a schedule-driven function of a running stack by name")
    i.add_argument("name")
    sub.add_parser("fire-schedules", help="fire the one-off schedules (campaign launches) of a running stack now")
    sd = sub.add_parser("seed", help="fill an account of a running local stack with friends, chats and members")
    sd.add_argument("--account", required=True, help="an existing account id (POST /accounts)")
    sd.add_argument("--friends", type=int, default=0)
    sd.add_argument("--chats", type=int, default=0, help="1:1 messages over the last year, among the friends")
    sd.add_argument("--members", type=int, default=0)
    sd.add_argument("--endpoint", default=f"http://127.0.0.1:{os.environ.get('TSUNAGU_MOTO_PORT', '5001')}")
    sd.add_argument("--table", default="tsunagu-local-Table")
    sd.add_argument("--secret-prefix", default="tsunagu/dev")
    args = ap.parse_args()

    if args.cmd == "demo":
        from tsunagu_local import demo

        demo.main()
    elif args.cmd == "serve":
        from tsunagu_local.stack import LocalStack

        stack = LocalStack(log_level=args.log_level, pollers_enabled=not args.no_pollers).start()
        keyed = "TSUNAGU_OPERATOR_KEY" in os.environ and os.environ["TSUNAGU_OPERATOR_KEY"] == stack.operator_key
        print(
            f"tsunagu local stack ready\n  HTTP API      {stack.api_url}  (GET /health)\n"
            f"  LINE sandbox  {stack.sandbox_url}\n  moto server   {stack.moto_url}\n"
            f"  operator key  {'from TSUNAGU_OPERATOR_KEY' if keyed else stack.operator_key}\n"
            "State is in memory only: it is gone when this process stops.",
            flush=True,
        )
        if args.console_demo:
            from tsunagu_local.console_demo import demo_staff

            r = request(
                "POST",
                f"{stack.api_url}/accounts",
                {"name": "生協テスト店", "plan": "light"},
                headers={"Authorization": f"Bearer {stack.operator_key}"},
            )
            auth = {"Authorization": f"Bearer {r.json['api_key']}"}
            url, email, password = demo_staff(stack.api_url, r.json["account_id"], auth)
            print(f"  console       {url}\n  staff login   {email} / {password}", flush=True)
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        try:
            done.wait()
        except KeyboardInterrupt:
            pass
        stack.stop()
    elif args.cmd == "invoke":
        port = os.environ.get("TSUNAGU_PORT", "3000")
        r = request("POST", f"http://127.0.0.1:{port}/_local/invoke/{args.name}")
        print(json.dumps(r.json, ensure_ascii=False, indent=2))
        sys.exit(0 if r.status == 200 else 1)
    elif args.cmd == "fire-schedules":
        port = os.environ.get("TSUNAGU_PORT", "3000")
        r = request("POST", f"http://127.0.0.1:{port}/_local/fire-schedules")
        print(json.dumps(r.json, ensure_ascii=False, indent=2))
        sys.exit(0 if r.status == 200 else 1)
    elif args.cmd == "seed":
        from tsunagu_local import seed

        ddb, sm = seed.connect(args.endpoint)
        seeder = seed.Seeder(ddb, sm, args.table, args.secret_prefix, args.account)
        seed.run(seeder, args.friends, args.chats, args.members)


if __name__ == "__main__":
    main()
