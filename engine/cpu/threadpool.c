/*
 * threadpool.c - persistent workers with a generation counter (see
 * threadpool.h). Workers spin on the generation for a short while, then block
 * on a condition variable; the dispatcher only signals when someone sleeps.
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

#define NS__SPIN_ITERS 20000

typedef struct ns__worker {
    ns_threadpool *tp;
    int32_t ith;
    pthread_t thread;
} ns__worker;

struct ns_threadpool {
    int32_t n_threads;
    ns__worker *workers; /* [n_threads - 1] */
    int32_t n_started;

    ns_threadpool_fn fn;
    void *arg;
    atomic_uint gen;    /* bumped once per run */
    atomic_int n_done;  /* workers finished with the current run */
    atomic_int chunk;   /* dynamic work counter */
    atomic_int n_sleep; /* workers blocked on cond */
    atomic_bool stop;

    pthread_mutex_t mu;
    pthread_cond_t cond;
};

static void *worker_main(void *p) {
    ns__worker *w = p;
    ns_threadpool *tp = w->tp;
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&tp->gen, memory_order_acquire)) == seen &&
               !atomic_load_explicit(&tp->stop, memory_order_acquire)) {
            if (++spins < NS__SPIN_ITERS) {
                NS__PAUSE();
                continue;
            }
            pthread_mutex_lock(&tp->mu);
            atomic_fetch_add(&tp->n_sleep, 1);
            while (atomic_load(&tp->gen) == seen && !atomic_load(&tp->stop)) {
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
        tp->fn(tp->arg, w->ith, tp->n_threads);
        atomic_fetch_add_explicit(&tp->n_done, 1, memory_order_release);
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
    ns_threadpool *tp = calloc(1, sizeof(*tp));
    if (tp == NULL) {
        return NS_ERR_NOMEM;
    }
    tp->n_threads = n_threads;
    pthread_mutex_init(&tp->mu, NULL);
    pthread_cond_init(&tp->cond, NULL);
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
    free(tp);
    *ptp = NULL;
}

int32_t ns_threadpool_n_threads(const ns_threadpool *tp) {
    return tp->n_threads;
}

void ns_threadpool_run(ns_threadpool *tp, ns_threadpool_fn fn, void *arg) {
    atomic_store_explicit(&tp->chunk, 0, memory_order_relaxed);
    if (tp->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    tp->fn = fn;
    tp->arg = arg;
    atomic_store_explicit(&tp->n_done, 0, memory_order_relaxed);
    atomic_fetch_add(&tp->gen, 1); /* seq_cst: pairs with the n_sleep check */
    if (atomic_load(&tp->n_sleep) > 0) {
        pthread_mutex_lock(&tp->mu);
        pthread_cond_broadcast(&tp->cond);
        pthread_mutex_unlock(&tp->mu);
    }
    fn(arg, 0, tp->n_threads);
    int spins = 0;
    while (atomic_load_explicit(&tp->n_done, memory_order_acquire) < tp->n_threads - 1) {
        if (++spins < NS__SPIN_ITERS) {
            NS__PAUSE();
        } else {
            sched_yield();
        }
    }
}

/* Below this many multiply-adds an op runs on the calling thread: a
 * wake-up round trip costs about as much, and far more on a loaded machine. */
#define NS__MIN_PARALLEL_WORK 32768.0

void ns_threadpool_run_sized(ns_threadpool *tp, ns_threadpool_fn fn, void *arg, double work) {
    if (work < NS__MIN_PARALLEL_WORK) {
        atomic_store_explicit(&tp->chunk, 0, memory_order_relaxed);
        fn(arg, 0, 1);
        return;
    }
    ns_threadpool_run(tp, fn, arg);
}

int32_t ns_threadpool_chunk(ns_threadpool *tp) {
    return atomic_fetch_add_explicit(&tp->chunk, 1, memory_order_relaxed);
}
