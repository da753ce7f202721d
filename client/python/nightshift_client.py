"""nightshift_client - a Python client for the nightshift broker (NSQ1).

Written from docs/protocol.md only; needs pyzmq and msgpack (Debian:
python3-zmq, python3-msgpack).

    from nightshift_client import Client
    with Client("tcp://127.0.0.1:5555") as c:
        batch = c.create_batch(model="tinyllama", name="demo")
        c.enqueue(batch, [{"custom_id": "a", "prompt": "Once upon a time", "max_tokens": 32}])
        c.seal(batch)
        for ev in c.watch(batch):
            print(ev["succeeded"], "/", ev["total"])
        for item in c.results(batch):
            print(item["custom_id"], item["text"])
"""

import itertools
import time

import msgpack
import zmq

TAG = b"NSQ1"

# Command bytes (docs/protocol.md, "Commands").
CREATE_BATCH = 0x01
ENQUEUE = 0x02
SEAL = 0x03
STATUS = 0x04
WATCH = 0x05
RESULTS = 0x06
CANCEL = 0x07
RETRY = 0x08
WORKERS = 0x09
PING = 0x0A
OK = 0x80
ERROR = 0x81
EVENT = 0x82

MAX_JOBS_PER_MESSAGE = 10000


class NightshiftError(Exception):
    """An ERROR reply: .code is the error code, .message the detail."""

    def __init__(self, code, message):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.message = message


class Timeout(Exception):
    """No reply within the client's timeout."""


class Client:
    """A synchronous client over one DEALER socket.

    Each request carries a fresh rid; replies with another rid are dropped.
    After a timeout the socket is recreated (Lazy Pirate), so a late reply can
    never be taken for the answer to a later request.
    """

    def __init__(self, endpoint="tcp://127.0.0.1:5555", timeout=30.0, context=None):
        self.endpoint = endpoint
        self.timeout = timeout
        self._ctx = context or zmq.Context.instance()
        self._rids = itertools.count(1)
        self._sock = None
        self._open()

    def _open(self):
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.connect(self.endpoint)

    def close(self):
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- framing ---------------------------------------------------------

    def _send(self, cmd, body, payloads=()):
        rid = next(self._rids)
        body = dict(body)
        body["rid"] = rid
        frames = [TAG, bytes([cmd]), msgpack.packb(body, use_bin_type=True)]
        frames.extend(payloads)
        self._sock.send_multipart(frames)
        return rid

    def _recv(self, rid, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self._sock.poll(int(left * 1000) + 1):
                if time.monotonic() >= deadline:
                    self.close()
                    self._open()
                    raise Timeout("no reply from %s within %.1f s" % (self.endpoint, timeout))
                continue
            frames = self._sock.recv_multipart()
            if len(frames) < 3 or frames[0] != TAG or len(frames[1]) != 1:
                continue  # not an NSQ1 message: ignore
            cmd = frames[1][0]
            body = msgpack.unpackb(frames[2], raw=False)
            if body.get("rid") != rid and not (cmd == ERROR and body.get("rid") is None):
                continue  # a late reply to an earlier request
            if cmd == ERROR:
                raise NightshiftError(body.get("code"), body.get("message"))
            return cmd, body

    def call(self, cmd, body=None, payloads=()):
        """Send one request and return the reply body (raises NightshiftError)."""
        rid = self._send(cmd, body or {}, payloads)
        _, reply = self._recv(rid, self.timeout)
        return reply

    # ---- commands ----------------------------------------------------------

    def ping(self):
        return self.call(PING)

    def create_batch(self, model, name="", priority=0, max_attempts=3, metadata=None, idempotency_key=None):
        """Create a batch; returns its id (the existing one for a known idempotency key)."""
        body = {"model": model, "name": name, "priority": priority, "max_attempts": max_attempts}
        if metadata is not None:
            body["metadata"] = metadata
        if idempotency_key is not None:
            body["idempotency_key"] = idempotency_key
        return self.call(CREATE_BATCH, body)["batch_id"]

    def enqueue(self, batch_id, jobs, chunk=1000):
        """Enqueue an iterable of job dicts (custom_id, prompt or messages, sampling
        fields), `chunk` jobs per message. Returns the number accepted. Each
        message is all-or-nothing."""
        if not 1 <= chunk <= MAX_JOBS_PER_MESSAGE:
            raise ValueError("chunk must be in 1..%d" % MAX_JOBS_PER_MESSAGE)
        accepted = 0
        buf = []
        for job in jobs:
            buf.append(msgpack.packb(job, use_bin_type=True))
            if len(buf) == chunk:
                accepted += self.call(ENQUEUE, {"batch_id": batch_id}, buf)["accepted"]
                buf = []
        if buf:
            accepted += self.call(ENQUEUE, {"batch_id": batch_id}, buf)["accepted"]
        return accepted

    def seal(self, batch_id):
        return self.call(SEAL, {"batch_id": batch_id})

    def status(self, batch_id):
        return self.call(STATUS, {"batch_id": batch_id})

    def watch(self, batch_id, interval_ms=1000, idle_timeout=None):
        """Yield status events until the batch is done (the last event has done=True).
        idle_timeout: seconds without any event before Timeout (default: 3x the
        broker's 10 s keep-alive)."""
        rid = self._send(WATCH, {"batch_id": batch_id, "interval_ms": interval_ms})
        idle = idle_timeout if idle_timeout is not None else 30.0
        while True:
            _, ev = self._recv(rid, idle)
            yield ev
            if ev.get("done"):
                return

    def results(self, batch_id, errors=False, page=500):
        """Yield result items (errors=True: failed/cancelled jobs with their errors)."""
        after = 0
        while True:
            rep = self.call(RESULTS, {"batch_id": batch_id, "after": after, "limit": page, "errors": errors})
            for item in rep["items"]:
                yield item
            after = rep["next"]
            if not rep["more"]:
                return

    def cancel(self, batch_id, custom_ids=None):
        body = {"batch_id": batch_id}
        if custom_ids is not None:
            body["custom_ids"] = list(custom_ids)
        return self.call(CANCEL, body)

    def retry(self, batch_id):
        return self.call(RETRY, {"batch_id": batch_id})["requeued"]

    def workers(self):
        return self.call(WORKERS)["workers"]
