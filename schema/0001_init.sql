-- 0001_init.sql - the nightshift job queue schema, version 1.
--
-- Applied by `nightshift migrate --pg CONNINFO` or `nightshift-broker --migrate`
-- inside one transaction that holds an advisory lock (see schema/README.md).
-- Counters on `batches` are maintained by the statements that change job state
-- (queue/q_*.c); nothing ever recomputes them with GROUP BY over `jobs`.
-- jobs and job_inputs have no foreign keys: they are only written by
-- queue/q_enqueue.c, which checks the batch and writes both in one
-- transaction, and per-row RI triggers would halve bulk enqueue speed.

CREATE TYPE ns_job_state AS ENUM ('queued', 'leased', 'succeeded', 'failed', 'cancelled');
CREATE TYPE ns_batch_state AS ENUM ('open', 'sealed', 'done', 'cancelled');

CREATE TABLE batches (
    id                bigserial PRIMARY KEY,
    name              text NOT NULL DEFAULT '',
    model             text NOT NULL,
    state             ns_batch_state NOT NULL DEFAULT 'open',
    priority          integer NOT NULL DEFAULT 0,
    max_attempts      integer NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 100),
    metadata          jsonb,
    idempotency_key   text,
    -- counters: total = queued + running + succeeded + failed + cancelled
    total             bigint NOT NULL DEFAULT 0,
    queued            bigint NOT NULL DEFAULT 0,
    running           bigint NOT NULL DEFAULT 0,
    succeeded         bigint NOT NULL DEFAULT 0,
    failed            bigint NOT NULL DEFAULT 0,
    cancelled         bigint NOT NULL DEFAULT 0,
    prompt_tokens     bigint NOT NULL DEFAULT 0,
    completion_tokens bigint NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    sealed_at         timestamptz,
    started_at        timestamptz,
    finished_at       timestamptz,
    CHECK (queued >= 0 AND running >= 0 AND succeeded >= 0 AND failed >= 0 AND cancelled >= 0),
    CHECK (total = queued + running + succeeded + failed + cancelled)
);
CREATE UNIQUE INDEX batches_idempotency_key ON batches (idempotency_key) WHERE idempotency_key IS NOT NULL;

-- The hot row: narrow, updated on every state change. Inputs live in job_inputs.
--   attempt   lease epoch: incremented by every claim; every write after a claim
--             is fenced on (id, attempt), so a stale lease can never write.
--   failures  attempts charged as failed (error, lost worker, expired lease);
--             the job is retried while failures < max_attempts.
CREATE TABLE jobs (
    id               bigserial PRIMARY KEY,
    batch_id         bigint NOT NULL, -- batches.id; no FK: a per-row RI trigger would halve COPY speed
    custom_id        text NOT NULL,
    state            ns_job_state NOT NULL DEFAULT 'queued',
    priority         integer NOT NULL DEFAULT 0,
    attempt          integer NOT NULL DEFAULT 0,
    failures         integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL DEFAULT 3,
    cancel_requested boolean NOT NULL DEFAULT false,
    lease_owner      text,
    lease_expires_at timestamptz,
    run_at           timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    leased_at        timestamptz,
    finished_at      timestamptz,
    UNIQUE (batch_id, custom_id)
);
-- Claim index: only queued jobs, in claim order.
CREATE INDEX jobs_claim ON jobs (priority DESC, id) WHERE state = 'queued';
-- Lease lookups: by owner (silent worker) and by expiry (reaper).
CREATE INDEX jobs_lease_owner ON jobs (lease_owner) WHERE state = 'leased';
CREATE INDEX jobs_lease_expiry ON jobs (lease_expires_at) WHERE state = 'leased';
-- Error pages and "retry failed" over one batch.
CREATE INDEX jobs_batch_unsuccessful ON jobs (batch_id, id) WHERE state IN ('failed', 'cancelled');
-- Cancel over one batch uses the (batch_id, custom_id) unique index.

CREATE TABLE job_inputs (
    job_id      bigint PRIMARY KEY, -- jobs.id, inserted in the same transaction (no FK, see jobs.batch_id)
    prompt      text,
    messages    jsonb,
    max_tokens  integer NOT NULL,
    temperature real NOT NULL,
    top_k       integer NOT NULL,
    top_p       real NOT NULL,
    min_p       real NOT NULL,
    seed        bigint,
    stop        jsonb,
    CHECK ((prompt IS NULL) <> (messages IS NULL))
);

CREATE TABLE results (
    job_id            bigint PRIMARY KEY REFERENCES jobs (id),
    batch_id          bigint NOT NULL,
    attempt           integer NOT NULL,
    worker            text NOT NULL,
    text              text NOT NULL,
    finish_reason     text NOT NULL,
    prompt_tokens     integer NOT NULL,
    completion_tokens integer NOT NULL,
    queue_ms          double precision,
    prefill_ms        double precision,
    decode_ms         double precision,
    total_ms          double precision,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX results_batch ON results (batch_id, job_id);

CREATE TABLE job_errors (
    job_id     bigint NOT NULL REFERENCES jobs (id),
    attempt    integer NOT NULL,
    worker     text,
    kind       text NOT NULL,
    message    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, attempt)
);
