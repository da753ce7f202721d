/*
 * threadpool.h - a persistent pool of worker threads for the CPU backend.
 *
 * An op is one call: ns_threadpool_run_items(fn, arg, n_items) runs
 * fn(arg, ith, item) for every item in [0, n_items), handing items out to
 * the caller (thread 0) and the workers, and returns
 * when every item has finished. Completion counts items, not threads: a
 * worker that has not woken up yet (or was descheduled on a busy machine)
 * never delays an op it took no item of; the threads that are running simply
 * take all the items. Items are split into one contiguous range per thread
 * (a thread streams its own run of weight rows), and a thread that runs out
 * steals from the others. Workers spin briefly between ops (ops follow each
 * other within microseconds during a forward pass), then sleep on a
 * condition variable; the caller wakes sleepers only when there are any.
 *
 * ns_threadpool_run(fn, arg) is the older form: fn(arg, k, nth) is called
 * once for every k in [0, nth) (k is the item, not necessarily the calling
 * thread), and ns_threadpool_chunk hands out sub-items dynamically.
 *
 * `ith` (the executing thread, 0..nth-1) is stable for the duration of an
 * item, so per-thread scratch indexed by it is never shared.
 *
 * Ownership: the pool owns its threads; ns_threadpool_free joins them.
 * Thread safety: run calls must come from one thread at a time.
 */
#ifndef NS_CPU_THREADPOOL_H
#define NS_CPU_THREADPOOL_H

#include <stdint.h>

#include "ns_status.h"

typedef struct ns_threadpool ns_threadpool;

/* Old-style task: called once per k in [0, nth). */
typedef void (*ns_threadpool_fn)(void *arg, int32_t ith, int32_t nth);

/* One work item `item`, executed by thread `ith`. */
typedef void (*ns_threadpool_item_fn)(void *arg, int32_t ith, int32_t item);

/* Start n_threads - 1 workers (1 <= n_threads <= 1024). */
ns_status ns_threadpool_create(int32_t n_threads, ns_threadpool **out);

/* Stop and join the workers; sets *tp to NULL. NULL-safe. */
void ns_threadpool_free(ns_threadpool **tp);

int32_t ns_threadpool_n_threads(const ns_threadpool *tp);

/* Run fn for every item in [0, n_items) over the pool and wait for all of
 * them. n_items <= 0 returns at once; n_items == 1 or a 1-thread pool runs on
 * the caller alone. */
void ns_threadpool_run_items(ns_threadpool *tp, ns_threadpool_item_fn fn, void *arg, int32_t n_items);

/* Run fn(arg, k, nth) for k in [0, nth) and wait. Resets the chunk counter
 * to 0 before starting. */
void ns_threadpool_run(ns_threadpool *tp, ns_threadpool_fn fn, void *arg);

/* Like ns_threadpool_run, but runs fn(arg, 0, 1) on the caller alone when
 * `work` (an op's rough cost in multiply-adds) is below the size where
 * waking the workers pays off. */
void ns_threadpool_run_sized(ns_threadpool *tp, ns_threadpool_fn fn, void *arg, double work);

/* Whether an op of `work` multiply-adds is worth spreading over the pool. */
int ns_threadpool_worth_parallel(const ns_threadpool *tp, double work);

/* Next sub-item index for the current ns_threadpool_run (0, 1, 2, ...);
 * callers stop when it reaches their item count. Safe from every thread of
 * the run. */
int32_t ns_threadpool_chunk(ns_threadpool *tp);

/* Number of online CPU cores (>= 1). */
int32_t ns_cpu_count(void);

#endif /* NS_CPU_THREADPOOL_H */
