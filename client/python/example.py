#!/usr/bin/env python3
"""Submit a few prompts, watch the batch, print the results.

    python3 client/python/example.py --broker tcp://127.0.0.1:5555 --model MODEL
"""
import argparse
import sys

from nightshift_client import Client, NightshiftError


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", default="tcp://127.0.0.1:5555")
    ap.add_argument("--model", required=True, help="model name the workers serve")
    ap.add_argument("-n", type=int, default=10, help="number of jobs")
    args = ap.parse_args()

    with Client(args.broker) as c:
        batch = c.create_batch(model=args.model, name="python-example", metadata={"source": "example.py"})
        jobs = [{"custom_id": "job-%d" % i, "prompt": "Once upon a time, number %d," % i, "max_tokens": 16,
                 "temperature": 0.0} for i in range(args.n)]
        jobs.append({"custom_id": "chat-0", "messages": [{"role": "user", "content": "Say hello."}],
                     "max_tokens": 16})
        c.enqueue(batch, jobs)
        c.seal(batch)
        print("batch", batch)
        for ev in c.watch(batch, interval_ms=200):
            print("  %(succeeded)d ok, %(failed)d failed, %(running)d running, %(queued)d queued "
                  "(%(tokens_per_s).1f tok/s)" % ev)
        for item in c.results(batch):
            print(item["custom_id"], repr(item["text"]))
        for item in c.results(batch, errors=True):
            print(item["custom_id"], item["state"], item["errors"][-1]["message"] if item["errors"] else "")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except NightshiftError as e:
        print("error:", e, file=sys.stderr)
        sys.exit(1)
