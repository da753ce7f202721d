/*
 * threadpool.h - a persistent pool of worker threads for the CPU backend.
 *
 * ns_threadpool_run(fn, arg) runs fn(arg, ith, nth) once on each of the nth
 * threads (the caller is thread 0) and returns when all have finished, so an
 * op is one call. Workers spin briefly between ops (ops follow each other
 * within microseconds during a forward pass), then sleep on a condition
 * variable. ns_threadpool_chunk hands out work items dynamically.
 *
 * Ownership: the pool owns its threads; ns_threadpool_free joins them.
 * Thread safety: run() must be called from one thread at a time.
 */
#ifndef NS_CPU_THREADPOOL_H
#define NS_CPU_THREADPOOL_H

#include <stdint.h>

#include "ns_status.h"

typedef struct ns_threadpool ns_threadpool;

typedef void (*ns_threadpool_fn)(void *arg, int32_t ith, int32_t nth);

/* Start n_threads - 1 workers (n_threads >= 1). */
ns_status ns_threadpool_create(int32_t n_threads, ns_threadpool **out);

/* Stop and join the workers; sets *tp to NULL. NULL-safe. */
void ns_threadpool_free(ns_threadpool **tp);

int32_t ns_threadpool_n_threads(const ns_threadpool *tp);

/* Run fn on every thread and wait for all of them. Also resets the chunk
 * counter to 0 before starting. */
void ns_threadpool_run(ns_threadpool *tp, ns_threadpool_fn fn, void *arg);

/* Like ns_threadpool_run, but runs fn(arg, 0, 1) on the caller alone when
 * `work` (an op's rough cost in multiply-adds) is below the size where
 * waking the workers pays off. */
void ns_threadpool_run_sized(ns_threadpool *tp, ns_threadpool_fn fn, void *arg, double work);

/* Next work item index for the current run (0, 1, 2, ...); callers stop
 * when it reaches their item count. Safe from every thread of the run. */
int32_t ns_threadpool_chunk(ns_threadpool *tp);

/* Number of online CPU cores (>= 1). */
int32_t ns_cpu_count(void);

#endif /* NS_CPU_THREADPOOL_H */
