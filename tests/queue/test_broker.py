#!/usr/bin/env python3
"""End-to-end broker test: real PostgreSQL, real sockets, no mocks.

Runs nightshift-broker and fake_worker (C, real worker protocol, real
PostgreSQL writes) and drives them with the Python client
(client/python/nightshift_client.py) and raw ZeroMQ sockets:
submit/watch/results, duplicate custom_id, failures and retry, cancel,
10,000 malformed frames while a correct client is served (bounded RSS),
worker kill -9, broker kill -9 + restart, PostgreSQL restart, SIGTERM drain.

Environment (set by test_broker.sh): NS_PG_CONNINFO, NS_PG_DIR, NS_BUILD_DIR,
NS_SOURCE_DIR.
"""
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time

import msgpack
import zmq

SRC = os.environ["NS_SOURCE_DIR"]
BUILD = os.environ["NS_BUILD_DIR"]
PG = os.environ["NS_PG_CONNINFO"]
PGDIR = os.environ["NS_PG_DIR"]
sys.path.insert(0, os.path.join(SRC, "client", "python"))
from nightshift_client import Client, NightshiftError, Timeout  # noqa: E402

BROKER = os.path.join(BUILD, "bin", "nightshift-broker")
WORKER = os.path.join(BUILD, "tests", "fake_worker")
PSQL = "/usr/lib/postgresql/15/bin/psql"
PGENV = os.path.join(SRC, "tests", "queue", "pg_test_env.sh")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


CPORT, WPORT = free_port(), free_port()
CEP, WEP = "tcp://127.0.0.1:%d" % CPORT, "tcp://127.0.0.1:%d" % WPORT
LOGDIR = os.environ.get("NS_TEST_TMP", "/tmp")
procs = []


def log(*a):
    print("[test_broker %.1f]" % (time.monotonic() - T0), *a, flush=True)


def start_broker(extra=()):
    logf = open(os.path.join(LOGDIR, "broker.log"), "a")
    p = subprocess.Popen([BROKER, "--pg", PG, "--clients", CEP, "--workers", WEP, "--migrate",
                          "--heartbeat-ms", "250", "--lease-ms", "6000", "--reap-ms", "1000",
                          "--backoff-ms", "50:100"] + list(extra), stdout=logf, stderr=logf)
    procs.append(p)
    return p


def start_worker(name, model, slots=4, delay_ms=0, crash_after=0):
    logf = open(os.path.join(LOGDIR, "worker-%s.log" % name), "a")
    args = [WORKER, "--broker", WEP, "--pg", PG, "--model", model, "--name", name, "--slots", str(slots),
            "--delay-ms", str(delay_ms)]
    if crash_after:
        args += ["--crash-after", str(crash_after)]
    p = subprocess.Popen(args, stdout=logf, stderr=logf)
    procs.append(p)
    return p


def sql(q):
    out = subprocess.run([PSQL, PG, "-XAtqc", q], check=True, capture_output=True, text=True).stdout
    return out.strip()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def wait_done(c, batch, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            st = c.status(batch)
            if st["done"]:
                return st
        except (NightshiftError, Timeout) as e:
            log("status:", e)
        time.sleep(0.2)
    raise AssertionError("batch %d not done: %r" % (batch, c.status(batch)))


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def check_exactly_once(batch, n):
    """Every job succeeded once; the result is the final attempt's."""
    rows = sql("SELECT count(*), count(r.job_id), count(*) FILTER (WHERE r.attempt = j.attempt) "
               "FROM jobs j LEFT JOIN results r ON r.job_id = j.id WHERE j.batch_id = %d AND j.state = 'succeeded'"
               % batch)
    check(rows == "%d|%d|%d" % (n, n, n), "exactly-once check failed for batch %d: %s" % (batch, rows))
    counters = sql("SELECT total, succeeded, queued, running FROM batches WHERE id = %d" % batch)
    check(counters == "%d|%d|0|0" % (n, n), "counters: %s" % counters)


def jobs(prefix, n, chat_every=3):
    out = []
    for i in range(n):
        if chat_every and i % chat_every == 0:
            out.append({"custom_id": "%s-%d" % (prefix, i), "max_tokens": 8,
                        "messages": [{"role": "system", "content": "sys"},
                                     {"role": "user", "content": "question %d \u00e9\u4e2d" % i}],
                        "stop": ["\n"], "seed": i})
        else:
            out.append({"custom_id": "%s-%d" % (prefix, i), "prompt": "prompt %d\ttab\nnl" % i,
                        "temperature": 0.0, "top_k": 40, "top_p": 0.9, "min_p": 0.05})
    return out


def test_basic(c):
    batch = c.create_batch(model="m-basic", name="basic", metadata={"owner": "test", "n": [1, 2.5, None]},
                           idempotency_key="basic-1")
    check(c.create_batch(model="m-basic", idempotency_key="basic-1") == batch, "idempotency key")
    js = jobs("b", 300)
    check(c.enqueue(batch, js, chunk=128) == 300, "accepted")
    c.seal(batch)
    events = list(c.watch(batch, interval_ms=100))
    check(events[-1]["done"] and events[-1]["succeeded"] == 300, "watch final %r" % events[-1])
    st = c.status(batch)
    check(st["metadata"] == {"owner": "test", "n": [1, 2.5, None]}, "metadata %r" % st.get("metadata"))
    check(st["state"] == "done" and st["completion_tokens"] == 1500, "status %r" % st)
    items = list(c.results(batch, page=70))
    check(len(items) == 300, "results %d" % len(items))
    by_id = {it["custom_id"]: it for it in items}
    check(by_id["b-1"]["text"] == "echo: prompt 1\ttab\nnl", "text %r" % by_id["b-1"]["text"])
    check(by_id["b-3"]["text"] == "echo: question 3 \u00e9\u4e2d", "chat text %r" % by_id["b-3"]["text"])
    check(list(c.results(batch, errors=True)) == [], "no errors")
    ws = c.workers()
    check(any(w["name"] == "w-basic" and w["model"] == "m-basic" for w in ws), "workers %r" % ws)
    check_exactly_once(batch, 300)
    log("basic ok: 300 jobs, %d watch events" % len(events))


def test_duplicates_and_errors(c):
    batch = c.create_batch(model="m-basic", name="dups")
    c.enqueue(batch, [{"custom_id": "x", "prompt": "p"}])
    for bad, code, needle in [
        ([{"custom_id": "y", "prompt": "p"}, {"custom_id": "y", "prompt": "q"}], "duplicate_custom_id", "'y'"),
        ([{"custom_id": "x", "prompt": "p"}], "duplicate_custom_id", "x"),
        ([{"custom_id": "z"}], "bad_request", "exactly one of 'prompt' or 'messages'"),
        ([{"custom_id": "z", "prompt": "p", "temperature": -1}], "bad_request", "temperature"),
        ([{"custom_id": "z", "prompt": "p\x00"}], "bad_request", "NUL"),
        ([{"custom_id": "z", "prompt": "p" * (1024 * 1024 + 1)}], "too_large", "prompt"),
        ([{"custom_id": "z", "messages": [{"role": "user"}]}], "bad_request", "content"),
    ]:
        try:
            c.enqueue(batch, bad)
            raise AssertionError("accepted %r" % bad)
        except NightshiftError as e:
            check(e.code == code and needle in e.message, "%r -> %s: %s" % (bad[0], e.code, e.message))
    check(c.status(batch)["total"] == 1, "rejected messages inserted nothing")
    for cmd, body, code in [(0x04, {"batch_id": 999999}, "not_found"), (0x55, {}, "unknown_command"),
                            (0x01, {"name": "no model"}, "bad_request")]:
        try:
            c.call(cmd, body)
            raise AssertionError("no error for %r" % body)
        except NightshiftError as e:
            check(e.code == code, "%s != %s (%s)" % (e.code, code, e.message))
    c.seal(batch)
    try:
        c.enqueue(batch, [{"custom_id": "late", "prompt": "p"}])
        raise AssertionError("enqueue into sealed batch")
    except NightshiftError as e:
        check(e.code == "invalid_state", e.code)
    wait_done(c, batch)
    log("duplicates/errors ok")


def test_fail_retry(c):
    batch = c.create_batch(model="m-basic", name="fail", max_attempts=2)
    c.enqueue(batch, [{"custom_id": "fail-1", "prompt": "p"}, {"custom_id": "fatal-1", "prompt": "p"},
                      {"custom_id": "ok-1", "prompt": "p"}])
    c.seal(batch)
    st = wait_done(c, batch)
    check(st["failed"] == 2 and st["succeeded"] == 1, "status %r" % st)
    errs = {e["custom_id"]: e for e in c.results(batch, errors=True)}
    check(len(errs["fail-1"]["errors"]) == 2, "retryable failed twice: %r" % errs["fail-1"])
    check(len(errs["fatal-1"]["errors"]) == 1, "fatal failed once: %r" % errs["fatal-1"])
    check(errs["fail-1"]["errors"][0]["message"] == "this job always fails", "message")
    check(c.retry(batch) == 2, "retry count")
    st = wait_done(c, batch)
    check(st["failed"] == 2 and st["state"] == "done", "after retry %r" % st)
    errs = {e["custom_id"]: e for e in c.results(batch, errors=True)}
    check(len(errs["fail-1"]["errors"]) == 4, "history kept: %r" % errs["fail-1"])
    log("fail/retry ok")


def test_cancel(c):
    w = start_worker("w-slow", "m-slow", slots=2, delay_ms=300)
    batch = c.create_batch(model="m-slow", name="cancel")
    c.enqueue(batch, [{"custom_id": "c%d" % i, "prompt": "p"} for i in range(40)])
    time.sleep(1.0)
    r = c.cancel(batch, custom_ids=["c39"])
    check(r["cancelled"] == 1, "cancel one %r" % r)
    r = c.cancel(batch)
    check(r["cancelled"] + r["cancelling"] >= 30, "cancel batch %r" % r)
    st = wait_done(c, batch, timeout=20)
    check(st["state"] == "cancelled" and st["queued"] == 0 and st["running"] == 0, "cancelled %r" % st)
    check(st["cancelled"] >= 30 and st["succeeded"] + st["cancelled"] == 40, "counts %r" % st)
    try:
        c.retry(batch)
        raise AssertionError("retry of a cancelled batch")
    except NightshiftError as e:
        check(e.code == "invalid_state", e.code)
    w.send_signal(signal.SIGTERM)
    check(w.wait(10) == 0, "worker SIGTERM exit")
    log("cancel ok: %r" % {k: st[k] for k in ("succeeded", "cancelled")})


def malformed_frames(rng):
    """One malformed (or unusual) multipart message."""
    kind = rng.randrange(12)
    good_body = msgpack.packb({"rid": 1, "batch_id": 1})
    if kind == 0:
        return [os.urandom(rng.randrange(0, 64)) for _ in range(rng.randrange(1, 5))]
    if kind == 1:
        return [b"NSQ1", bytes([rng.randrange(256)]), good_body]          # unknown/any command
    if kind == 2:
        return [b"NSQ1", b"\x02", good_body[: rng.randrange(len(good_body))]]  # truncated msgpack
    if kind == 3:
        return [b"NSQ1", b"\x02", b"\xdd\xff\xff\xff\xff"]                # array of 4G elements
    if kind == 4:
        return [b"NSQ1", b"\x02", b"\xdf\x7f\xff\xff\xff" + b"\xa1a" * 3]  # map of 2G pairs
    if kind == 5:
        return [b"NSQ1", b"\x04", msgpack.packb({"rid": "x", "batch_id": [1, 2]})]  # wrong types
    if kind == 6:
        return [b"NSQ2", b"\x04", good_body]                                # wrong tag
    if kind == 7:
        return [b"NSQ1", b"\x04\x04", good_body]                            # 2-byte command
    if kind == 8:
        deep = b"\x91" * 200 + b"\xc0"
        return [b"NSQ1", b"\x04", deep]                                     # too deep
    if kind == 9:
        return [b"NSQ1", b"\x02", good_body, b"\xdc\xff\xff", os.urandom(30)]  # bad job frames
    if kind == 10:
        return [b"NSQ1", b"\x02", good_body + b"\x00"]                      # trailing bytes
    return [b"NSQ1", b"\x01", msgpack.packb({"rid": 5, "model": b"\xff\xfe".decode("latin1") + "\x00"})]


def test_fuzz(c, broker):
    rng = random.Random(1234)
    ctx = zmq.Context.instance()
    socks = []
    for ep in (CEP, WEP):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, 100000)
        s.connect(ep)
        socks.append(s)
    rss0 = rss_kb(broker.pid)
    served = 0
    replies = 0
    batch = c.create_batch(model="m-none", name="fuzz")
    for i in range(10000):
        s = socks[0] if i % 4 else socks[1]
        s.send_multipart(malformed_frames(rng))
        if i % 200 == 199:
            t = time.monotonic()
            st = c.status(batch)
            check(st["batch_id"] == batch, "status during fuzz")
            check(time.monotonic() - t < 5, "correct client starved")
            served += 1
        for sock in socks:
            while sock.poll(0):
                sock.recv_multipart()
                replies += 1
    # one oversized message: more payload frames than allowed
    socks[0].send_multipart([b"NSQ1", b"\x02", msgpack.packb({"rid": 77, "batch_id": batch})] + [b"\x80"] * 10001)
    deadline = time.monotonic() + 10
    got_too_large = False
    while time.monotonic() < deadline and not got_too_large:
        if socks[0].poll(200):
            fr = socks[0].recv_multipart()
            replies += 1
            body = msgpack.unpackb(fr[2], raw=False)
            got_too_large = fr[1] == b"\x81" and body.get("rid") == 77 and body.get("code") == "too_large"
    check(got_too_large, "too many frames -> too_large")
    check(broker.poll() is None, "broker died during fuzz")
    check(c.ping()["db"] is True, "ping after fuzz")
    rss1 = rss_kb(broker.pid)
    check(rss1 - rss0 < 64 * 1024, "broker RSS grew from %d to %d kB" % (rss0, rss1))
    for s in socks:
        s.close(0)
    log("fuzz ok: 10000 malformed messages, %d error replies, %d correct requests served, RSS %d -> %d kB"
        % (replies, served, rss0, rss1))


def test_worker_kill(c):
    batch = c.create_batch(model="m-kill", name="kill", max_attempts=5)
    c.enqueue(batch, [{"custom_id": "k%d" % i, "prompt": "p%d" % i} for i in range(60)])
    c.seal(batch)
    w = start_worker("w-kill", "m-kill", slots=4, delay_ms=100)
    time.sleep(0.8)
    w.kill()  # SIGKILL mid-batch, holding leases
    w.wait()
    time.sleep(0.2)
    st = c.status(batch)
    log("worker killed: %r" % {k: st[k] for k in ("succeeded", "running", "queued")})
    check(st["succeeded"] < 50, "worker finished too fast to test the kill")
    w = start_worker("w-kill", "m-kill", slots=4, delay_ms=5, crash_after=5)  # crashes on its own after 5
    w.wait(30)
    w = start_worker("w-kill", "m-kill", slots=4)
    wait_done(c, batch)
    check_exactly_once(batch, 60)
    lost = sql("SELECT count(*) FROM job_errors e JOIN jobs j ON j.id = e.job_id WHERE j.batch_id = %d "
               "AND e.kind IN ('worker_lost', 'worker_restarted')" % batch)
    check(int(lost) >= 1, "lost leases recorded")
    w.send_signal(signal.SIGTERM)
    w.wait(10)
    log("worker kill -9 ok (%s lost leases requeued)" % lost)


def test_broker_kill(c, broker):
    batch = c.create_batch(model="m-bk", name="broker-kill")
    # Jobs outlast the broker's downtime, so the worker holds 4 in flight when
    # the new broker comes up and must re-adopt them through READY.
    c.enqueue(batch, [{"custom_id": "bk%d" % i, "prompt": "p"} for i in range(12)])
    c.seal(batch)
    w = start_worker("w-bk", "m-bk", slots=4, delay_ms=2500)
    time.sleep(1.0)
    broker.kill()
    broker.wait()
    log("broker killed at %s succeeded" % sql("SELECT succeeded FROM batches WHERE id = %d" % batch))
    time.sleep(1.0)
    broker = start_broker()
    wait_done(c, batch, timeout=60)
    check_exactly_once(batch, 12)
    check(w.poll() is None, "worker survived the broker restart")
    w.send_signal(signal.SIGTERM)
    w.wait(10)
    with open(os.path.join(LOGDIR, "broker.log")) as f:
        text = f.read()
    import re
    adopted = [int(m) for m in re.findall(r"worker w-bk ready \(model m-bk, 4 slots; (\d+) adopted", text)]
    check(len(adopted) >= 2 and max(adopted[1:]) > 0, "in-flight jobs re-adopted after restart: %r" % adopted)
    log("broker kill -9 + restart ok (re-adopted %d in-flight jobs)" % max(adopted[1:]))
    return broker


def test_pg_restart(c):
    batch = c.create_batch(model="m-pg", name="pg-restart")
    c.enqueue(batch, [{"custom_id": "pg%d" % i, "prompt": "p"} for i in range(60)])
    w = start_worker("w-pg", "m-pg", slots=4, delay_ms=30)
    time.sleep(0.5)
    subprocess.run(["bash", PGENV, "stop", PGDIR], check=True)
    unavailable = 0
    try:
        c.enqueue(batch, [{"custom_id": "during", "prompt": "p"}])
    except NightshiftError as e:
        check(e.code == "unavailable", e.code)
        unavailable += 1
    time.sleep(1.0)
    subprocess.run(["bash", PGENV, "start", PGDIR], check=True, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            c.enqueue(batch, [{"custom_id": "after", "prompt": "p"}])
            break
        except NightshiftError as e:
            check(e.code == "unavailable" and time.monotonic() < deadline, "enqueue after restart: %s" % e)
            time.sleep(0.3)
    c.seal(batch)
    wait_done(c, batch, timeout=60)
    check_exactly_once(batch, 61)
    w.send_signal(signal.SIGTERM)
    w.wait(10)
    log("PostgreSQL restart ok (%d unavailable replies while down)" % unavailable)


def main():
    broker = start_broker()
    time.sleep(0.3)
    start_worker("w-basic", "m-basic", slots=8)
    c = Client(CEP, timeout=20)
    test_basic(c)
    test_duplicates_and_errors(c)
    test_fail_retry(c)
    test_cancel(c)
    test_fuzz(c, broker)
    test_worker_kill(c)
    broker = test_broker_kill(c, broker)
    test_pg_restart(c)
    broker.send_signal(signal.SIGTERM)
    rc = broker.wait(10)
    check(rc == 0, "broker SIGTERM exit %r" % rc)
    c.close()
    log("all ok")


if __name__ == "__main__":
    T0 = time.monotonic()
    try:
        main()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
