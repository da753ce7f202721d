/*
 * test_cpu_kernels.c - the CPU backend's SIMD kernels against the portable
 * C versions (dot f32, dot f32 x f16, f16 axpy, f32 -> f16), over odd
 * lengths, and the thread pool's dynamic chunking.
 */
#include <math.h>

#include "cpu/cpu_impl.h"
#include "fp16.h"
#include "ns_test.h"

static uint64_t g_rng = 88172645463325252ull;
static float frand(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static void test_kernels(void) {
    ns__cpu_kernels ref, fast;
    ns__cpu_kernels_init(&ref, false);
    ns__cpu_kernels_init(&fast, true);
    if (!fast.simd) {
        NS_SKIP("no AVX2/FMA/F16C on this CPU: only the portable kernels exist");
    }
    enum { N = 1031 };
    static float a[N], b[N], y1[N], y2[N];
    static uint16_t h[N], h1[N], h2[N];
    for (int i = 0; i < N; i++) {
        a[i] = frand();
        b[i] = frand();
        h[i] = ns_fp32_to_fp16(frand());
        y1[i] = y2[i] = frand();
    }
    const int lens[] = {0, 1, 7, 8, 9, 31, 32, 33, 64, 100, 255, 1031};
    for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
        int n = lens[k];
        double exact = 0, exact16 = 0, mag = 0;
        for (int i = 0; i < n; i++) {
            exact += (double)a[i] * b[i];
            exact16 += (double)a[i] * ns_fp16_to_fp32(h[i]);
            mag += fabs((double)a[i] * b[i]);
        }
        double tol = 1e-5 * (mag + 1);
        ASSERT_NEAR(ref.dot_f32(a, b, n), exact, tol);
        ASSERT_NEAR(fast.dot_f32(a, b, n), exact, tol);
        ASSERT_NEAR(ref.dot_f32_f16(a, h, n), exact16, tol);
        ASSERT_NEAR(fast.dot_f32_f16(a, h, n), exact16, tol);
        ref.f32_to_f16(h1, a, n);
        fast.f32_to_f16(h2, a, n);
        for (int i = 0; i < n; i++) {
            ASSERT_EQ(h1[i], h2[i]); /* both round to nearest even */
        }
    }
    ref.axpy_f16(y1, 0.37f, h, N);
    fast.axpy_f16(y2, 0.37f, h, N);
    for (int i = 0; i < N; i++) {
        ASSERT_NEAR(y1[i], y2[i], 1e-6);
    }
    printf("kernels: simd matches portable\n");
}

typedef struct chunk_args {
    ns_threadpool *tp;
    int hits[1000];
} chunk_args;

static void chunk_task(void *p, int32_t ith, int32_t nth) {
    (void)ith;
    (void)nth;
    chunk_args *a = p;
    for (;;) {
        int32_t i = ns_threadpool_chunk(a->tp);
        if (i >= 1000) {
            break;
        }
        a->hits[i]++;
    }
}

static void test_threadpool(void) {
    for (int nt = 1; nt <= 4; nt++) {
        ns_threadpool *tp = NULL;
        ASSERT_OK(ns_threadpool_create(nt, &tp));
        static chunk_args a;
        a.tp = tp;
        for (int rep = 0; rep < 50; rep++) {
            memset(a.hits, 0, sizeof(a.hits));
            ns_threadpool_run(tp, chunk_task, &a);
            for (int i = 0; i < 1000; i++) {
                ASSERT_EQ(a.hits[i], 1);
            }
        }
        ns_threadpool_free(&tp);
        ns_threadpool_free(&tp);
    }
    printf("threadpool: every item once, 1-4 threads\n");
}

int main(void) {
    test_threadpool();
    test_kernels();
    return 0;
}
