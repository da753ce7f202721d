/*
 * threadpool.c - persistent workers handing out items (see threadpool.h).
 *
 * Items are split into one contiguous range per thread, so in a decode
 * matmul every thread streams its own contiguous run of weight rows (what
 * hardware prefetchers and DRAM pages like best). Each range has its own
 * counter: the op's generation in the high 32 bits, the range's next
 * unclaimed item in the low 32. A thread claims from its own range first,
 * then steals from the others' (the front of what is left), so a thread
 * that is slow to wake or descheduled costs only the items it actually took.
 *
 * The op's function, argument and item count sit in desc[gen & 1]. A worker
 * that sees generation g (gen_pub) reads desc[g & 1] and claims with a
 * compare-and-swap that also checks the range still belongs to g: if the CAS
 * succeeds, g was current all along and desc[g & 1] (rewritten only for
 * g + 2, with release stores read back with acquire loads) was stable. The
 * caller waits until `done` reaches the item count, so an op never waits for
 * a thread that took no item.
 * Workers spin on gen_pub for a while, then block on a condition variable;
 * the caller broadcasts only when someone sleeps (n_sleep, checked after the
 * seq_cst publication: Dekker-style, no lost wake-ups).
 */
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define NS__PAUSE() _mm_pause()
#else
#define NS__PAUSE() ((void)0)
#endif

/* Worker spins (pause instructions) before sleeping between ops. */
#define NS__SPIN_ITERS 20000
/* Caller spins waiting for other threads' items before yielding the CPU. */
#define NS__WAIT_SPINS 4000

typedef struct ns__worker {
    ns_threadpool *tp;
    int32_t ith;
    pthread_t thread;
} ns__worker;

/* One thread's item range counter, alone in its cache line. */
typedef struct ns__range {
    _Alignas(64) _Atomic uint64_t w; /* gen << 32 | next item */
} ns__range;

typedef struct ns__op_desc {
    _Atomic(ns_threadpool_item_fn) fn;
    _Atomic(void *) arg;
    atomic_int n_items;
} ns__op_desc;

struct ns_threadpool {
    int32_t n_threads;
    ns__worker *workers; /* [n_threads - 1] */
    int32_t n_started;
    uint32_t gen; /* caller-owned: generation of the last op published */

    ns__range *ranges;                     /* [n_threads] */
    _Alignas(64) _Atomic uint32_t gen_pub; /* generation of the current op */
    _Alignas(64) atomic_int done;          /* items finished in the current op */
    _Alignas(64) atomic_int chunk;         /* sub-item counter for ns_threadpool_run */
    ns__op_desc desc[2];
    atomic_int n_sleep; /* workers blocked on cond */
    atomic_bool stop;

    pthread_mutex_t mu;
    pthread_cond_t cond;
};

static inline uint32_t work_gen(uint64_t w) {
    return (uint32_t)(w >> 32);
}

/* Item range [range_lo(k), range_lo(k + 1)) of thread k for n items. */
static inline int32_t range_lo(int32_t k, int32_t n, int32_t nth) {
    return (int32_t)(((int64_t)k * n) / nth);
}

/* Claim the next item of generation g from range k; false when the range is
 * exhausted or a newer op started. */
static bool claim_range(ns_threadpool *tp, int32_t k, uint32_t g, int32_t end, int32_t *item) {
    _Atomic uint64_t *cw = &tp->ranges[k].w;
    uint64_t w = atomic_load_explicit(cw, memory_order_acquire);
    for (;;) {
        if (work_gen(w) != g || (int64_t)(uint32_t)w >= (int64_t)end) {
            return false;
        }
        if (atomic_compare_exchange_weak_explicit(cw, &w, w + 1, memory_order_acq_rel, memory_order_acquire)) {
            *item = (int32_t)(uint32_t)w;
            return true;
        }
    }
}

/* Run items of generation g as thread ith: own range first, then the
 * others'. Returns how many items this thread ran. */
static int32_t run_ranges(ns_threadpool *tp, int32_t ith, uint32_t g, ns_threadpool_item_fn fn, void *arg, int32_t n) {
    const int32_t nth = tp->n_threads;
    int32_t ran = 0;
    for (int32_t d = 0; d < nth; d++) {
        const int32_t k = (ith + d) % nth;
        const int32_t end = range_lo(k + 1, n, nth);
        int32_t item;
        while (claim_range(tp, k, g, end, &item)) {
            fn(arg, ith, item);
            ran++;
        }
    }
    return ran;
}

static void *worker_main(void *p) {
    ns__worker *wk = p;
    ns_threadpool *tp = wk->tp;
    uint32_t seen = 0;
    for (;;) {
        uint32_t g;
        int spins = 0;
        while ((g = atomic_load_explicit(&tp->gen_pub, memory_order_acquire)) == seen &&
               !atomic_load_explicit(&tp->stop, memory_order_acquire)) {
            if (++spins < NS__SPIN_ITERS) {
                NS__PAUSE();
                continue;
            }
            pthread_mutex_lock(&tp->mu);
            atomic_fetch_add(&tp->n_sleep, 1);
            while (atomic_load(&tp->gen_pub) == seen && !atomic_load(&tp->stop)) {
                pthread_cond_wait(&tp->cond, &tp->mu);
            }
            atomic_fetch_sub(&tp->n_sleep, 1);
            pthread_mutex_unlock(&tp->mu);
            spins = 0;
        }
        if (atomic_load_explicit(&tp->stop, memory_order_acquire)) {
            break;
        }
        seen = g;
        ns__op_desc *d = &tp->desc[g & 1];
        ns_threadpool_item_fn fn = atomic_load_explicit(&d->fn, memory_order_acquire);
        void *arg = atomic_load_explicit(&d->arg, memory_order_acquire);
        int32_t n = atomic_load_explicit(&d->n_items, memory_order_acquire);
        int32_t ran = run_ranges(tp, wk->ith, g, fn, arg, n);
        if (ran > 0) {
            atomic_fetch_add_explicit(&tp->done, ran, memory_order_release);
        }
    }
    return NULL;
}

int32_t ns_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int32_t)n : 1;
}

ns_status ns_threadpool_create(int32_t n_threads, ns_threadpool **out) {
    *out = NULL;
    if (n_threads < 1 || n_threads > 1024) {
        return NS_ERR_INVALID_ARG;
    }
    ns_threadpool *tp = NULL;
    if (posix_memalign((void **)&tp, 64, sizeof(*tp)) != 0) {
        return NS_ERR_NOMEM;
    }
    *tp = (ns_threadpool){0};
    tp->n_threads = n_threads;
    atomic_init(&tp->gen_pub, 0);
    atomic_init(&tp->done, 0);
    atomic_init(&tp->chunk, 0);
    atomic_init(&tp->n_sleep, 0);
    atomic_init(&tp->stop, false);
    for (int i = 0; i < 2; i++) {
        atomic_init(&tp->desc[i].fn, NULL);
        atomic_init(&tp->desc[i].arg, NULL);
        atomic_init(&tp->desc[i].n_items, 0);
    }
    pthread_mutex_init(&tp->mu, NULL);
    pthread_cond_init(&tp->cond, NULL);
    if (posix_memalign((void **)&tp->ranges, 64, (size_t)n_threads * sizeof(ns__range)) != 0) {
        tp->ranges = NULL;
        ns_threadpool_free(&tp);
        return NS_ERR_NOMEM;
    }
    for (int32_t k = 0; k < n_threads; k++) {
        atomic_init(&tp->ranges[k].w, 0);
    }
    if (n_threads > 1) {
        tp->workers = calloc((size_t)n_threads - 1, sizeof(ns__worker));
        if (tp->workers == NULL) {
            ns_threadpool_free(&tp);
            return NS_ERR_NOMEM;
        }
    }
    for (int32_t i = 1; i < n_threads; i++) {
        ns__worker *w = &tp->workers[i - 1];
        w->tp = tp;
        w->ith = i;
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            ns_threadpool_free(&tp);
            return NS_ERR_NOMEM;
        }
        tp->n_started++;
    }
    *out = tp;
    return NS_OK;
}

void ns_threadpool_free(ns_threadpool **ptp) {
    if (ptp == NULL || *ptp == NULL) {
        return;
    }
    ns_threadpool *tp = *ptp;
    pthread_mutex_lock(&tp->mu);
    atomic_store(&tp->stop, true);
    pthread_cond_broadcast(&tp->cond);
    pthread_mutex_unlock(&tp->mu);
    for (int32_t i = 0; i < tp->n_started; i++) {
        pthread_join(tp->workers[i].thread, NULL);
    }
    pthread_mutex_destroy(&tp->mu);
    pthread_cond_destroy(&tp->cond);
    free(tp->workers);
    free(tp->ranges);
    free(tp);
    *ptp = NULL;
}

int32_t ns_threadpool_n_threads(const ns_threadpool *tp) {
    return tp->n_threads;
}

void ns_threadpool_run_items(ns_threadpool *tp, ns_threadpool_item_fn fn, void *arg, int32_t n_items) {
    if (n_items <= 0) {
        return;
    }
    if (tp->n_threads == 1 || n_items == 1) {
        for (int32_t i = 0; i < n_items; i++) {
            fn(arg, 0, i);
        }
        return;
    }
    const uint32_t g = ++tp->gen == 0 ? ++tp->gen : tp->gen; /* 0 is "no op yet" */
    const int32_t nth = tp->n_threads;
    ns__op_desc *d = &tp->desc[g & 1];
    atomic_store_explicit(&d->fn, fn, memory_order_release);
    atomic_store_explicit(&d->arg, arg, memory_order_release);
    atomic_store_explicit(&d->n_items, n_items, memory_order_release);
    atomic_store_explicit(&tp->done, 0, memory_order_relaxed);
    for (int32_t k = 0; k < nth; k++) {
        atomic_store_explicit(&tp->ranges[k].w, (uint64_t)g << 32 | (uint32_t)range_lo(k, n_items, nth),
                              memory_order_release);
    }
    atomic_store(&tp->gen_pub, g); /* seq_cst: publishes the op, pairs with n_sleep */
    if (atomic_load(&tp->n_sleep) > 0) {
        pthread_mutex_lock(&tp->mu);
        pthread_cond_broadcast(&tp->cond);
        pthread_mutex_unlock(&tp->mu);
    }
    const int32_t mine = run_ranges(tp, 0, g, fn, arg, n_items);
    if (mine > 0) {
        atomic_fetch_add_explicit(&tp->done, mine, memory_order_relaxed);
    }
    int spins = 0;
    while (atomic_load_explicit(&tp->done, memory_order_acquire) < n_items) {
        if (++spins < NS__WAIT_SPINS) {
            NS__PAUSE();
        } else {
            sched_yield();
        }
    }
}

typedef struct legacy_args {
    ns_threadpool_fn fn;
    void *arg;
    int32_t nth;
} legacy_args;

static void legacy_item(void *p, int32_t ith, int32_t item) {
    (void)ith;
    legacy_args *a = p;
    a->fn(a->arg, item, a->nth);
}

void ns_threadpool_run(ns_threadpool *tp, ns_threadpool_fn fn, void *arg) {
    atomic_store_explicit(&tp->chunk, 0, memory_order_relaxed);
    if (tp->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    legacy_args a = {fn, arg, tp->n_threads};
    ns_threadpool_run_items(tp, legacy_item, &a, tp->n_threads);
}

/* Below this many multiply-adds an op runs on the calling thread: a
 * wake-up round trip costs about as much, and far more on a loaded machine. */
#define NS__MIN_PARALLEL_WORK 32768.0

int ns_threadpool_worth_parallel(const ns_threadpool *tp, double work) {
    return tp->n_threads > 1 && work >= NS__MIN_PARALLEL_WORK;
}

void ns_threadpool_run_sized(ns_threadpool *tp, ns_threadpool_fn fn, void *arg, double work) {
    if (!ns_threadpool_worth_parallel(tp, work)) {
        atomic_store_explicit(&tp->chunk, 0, memory_order_relaxed);
        fn(arg, 0, 1);
        return;
    }
    ns_threadpool_run(tp, fn, arg);
}

int32_t ns_threadpool_chunk(ns_threadpool *tp) {
    return atomic_fetch_add_explicit(&tp->chunk, 1, memory_order_relaxed);
}
