/*
 * context.cu - the ns_cuda handle: device selection, context-overhead
 * measurement, the one device arena, streams, cuBLAS, copies, pinned host
 * memory, scratch reservation and the staging slots used to stream weights.
 *
 * Ownership: see ns_cuda_impl.cuh. The only cudaMalloc in the program is in
 * ns_cuda_create. Thread safety: one thread at a time per handle.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "ns_cuda_impl.cuh"

ns_status ns__cuda_fail(ns_cuda *c, cudaError_t e, const char *what, const char *file, int line) {
    const char *base = strrchr(file, '/');
    return ns__err_set(c ? &c->err : NULL, NS_ERR_DEVICE, "cuda: %s: %s (%s:%d)", what, cudaGetErrorString(e),
                       base ? base + 1 : file, line);
}

ns_status ns__cublas_fail(ns_cuda *c, cublasStatus_t s, const char *what, const char *file, int line) {
    const char *base = strrchr(file, '/');
    return ns__err_set(c ? &c->err : NULL, NS_ERR_DEVICE, "cublas: %s: %s (%s:%d)", what, cublasGetStatusString(s),
                       base ? base + 1 : file, line);
}

int ns_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError(); /* clear: "no driver" is not an error for callers */
        return 0;
    }
    return n;
}

/* ---- NVML through dlopen: free memory before our context exists ----------
 * cudaMemGetInfo needs a context, so it cannot see the context's own cost.
 * NVML can, without one. It is loaded at run time so nothing links against
 * the driver's libnvidia-ml (absent on CI machines). */
typedef struct ns__nvml_mem {
    unsigned long long total, free, used;
} ns__nvml_mem;

static bool nvml_free_bytes(const char *pci_bus_id, uint64_t *free_out) {
    typedef int (*init_fn)(void);
    typedef int (*handle_fn)(const char *, void **);
    typedef int (*mem_fn)(void *, ns__nvml_mem *);
    typedef int (*shutdown_fn)(void);
    bool ok = false;
    void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        return false;
    }
    init_fn init = (init_fn)dlsym(lib, "nvmlInit_v2");
    handle_fn by_bus = (handle_fn)dlsym(lib, "nvmlDeviceGetHandleByPciBusId_v2");
    mem_fn mem = (mem_fn)dlsym(lib, "nvmlDeviceGetMemoryInfo");
    shutdown_fn fini = (shutdown_fn)dlsym(lib, "nvmlShutdown");
    if (init != NULL && by_bus != NULL && mem != NULL && fini != NULL && init() == 0) {
        void *dev = NULL;
        ns__nvml_mem m;
        memset(&m, 0, sizeof m);
        if (by_bus(pci_bus_id, &dev) == 0 && mem(dev, &m) == 0) {
            *free_out = m.free;
            ok = true;
        }
        fini();
    }
    dlclose(lib);
    return ok;
}

static void destroy_partial(ns_cuda *c) {
    for (int i = 0; i < NS_CUDA_MAX_SLOTS; i++) {
        if (c->slots[i].ready != NULL) {
            cudaEventDestroy(c->slots[i].ready);
        }
        if (c->slots[i].free_ev != NULL) {
            cudaEventDestroy(c->slots[i].free_ev);
        }
    }
    if (c->h_embd_rows != NULL) {
        cudaFreeHost(c->h_embd_rows);
    }
    if (c->h_embd_ids != NULL) {
        cudaFreeHost(c->h_embd_ids);
    }
    if (c->blas != NULL) {
        cublasDestroy(c->blas);
    }
    if (c->compute != NULL) {
        cudaStreamDestroy(c->compute);
    }
    if (c->copy != NULL) {
        cudaStreamDestroy(c->copy);
    }
    if (c->arena_base != NULL) {
        cudaFree(c->arena_base);
    }
    free(c);
}

static ns_status create_inner(ns_cuda *c, int device, size_t arena_bytes) {
    cudaDeviceProp prop;
    char bus[32] = {0};
    size_t free_b = 0, total_b = 0;
    uint64_t nvml_free = 0;
    bool have_nvml;

    int n = ns_cuda_device_count();
    if (n <= 0) {
        return ns__err_set(&c->err, NS_ERR_DEVICE, "cuda: no CUDA device found");
    }
    if (device < 0 || device >= n) {
        return ns__err_set(&c->err, NS_ERR_INVALID_ARG, "cuda: device %d out of range (%d devices)", device, n);
    }
    /* Neither call creates a context. */
    NS_CU(c, cudaGetDeviceProperties(&prop, device));
    NS_CU(c, cudaDeviceGetPCIBusId(bus, (int)sizeof bus, device));
    have_nvml = nvml_free_bytes(bus, &nvml_free);

    c->info.device = device;
    memcpy(c->info.name, prop.name, sizeof c->info.name - 1);
    c->info.name[sizeof c->info.name - 1] = '\0';
    c->info.cc_major = prop.major;
    c->info.cc_minor = prop.minor;
    c->info.sm_count = prop.multiProcessorCount;
    c->info.total_bytes = prop.totalGlobalMem;

    /* Context, streams and cuBLAS: everything whose memory we cannot place in
     * the arena. Measured together as "context overhead". */
    NS_CU(c, cudaSetDevice(device));
    NS_CU(c, cudaFree(NULL)); /* creates the primary context */
    NS_CU(c, cudaStreamCreateWithFlags(&c->compute, cudaStreamNonBlocking));
    NS_CU(c, cudaStreamCreateWithFlags(&c->copy, cudaStreamNonBlocking));
    NS_CUBLAS(c, cublasCreate(&c->blas));
    NS_CUBLAS(c, cublasSetStream(c->blas, c->compute));
    NS_CUBLAS(c, cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH));
    NS_CU(c, cudaDeviceSynchronize());
    NS_CU(c, cudaMemGetInfo(&free_b, &total_b));
    c->info.free_after_ctx = free_b;
    c->info.free_before_ctx = have_nvml ? nvml_free : 0;
    c->info.overhead_exact = have_nvml && nvml_free >= free_b;
    c->info.context_overhead = c->info.overhead_exact ? nvml_free - free_b : total_b - free_b;

    if (arena_bytes == 0) {
        return ns__err_set(&c->err, NS_ERR_INVALID_ARG, "cuda: arena size is 0");
    }
    if (arena_bytes > free_b) {
        char want[32], have[32];
        return ns__err_set(&c->err, NS_ERR_CAPACITY, "cuda: arena of %s does not fit: %s free after the context",
                           ns_format_size(arena_bytes, want, sizeof want), ns_format_size(free_b, have, sizeof have));
    }
    /* The one device allocation. */
    NS_CU(c, cudaMalloc(&c->arena_base, arena_bytes));
    ns_arena_init_borrowed(&c->arena, c->arena_base, arena_bytes);
    c->info.arena_bytes = arena_bytes;
    return NS_OK;
}

ns_status ns_cuda_create(ns_cuda **out, int device, size_t arena_bytes, ns_err *err) {
    ns_cuda *c;
    ns_status st;
    NS_ASSERT(out != NULL);
    *out = NULL;
    c = (ns_cuda *)calloc(1, sizeof *c);
    if (c == NULL) {
        return ns__err_set(err, NS_ERR_NOMEM, "cuda: out of host memory");
    }
    st = create_inner(c, device, arena_bytes);
    if (st != NS_OK) {
        if (err != NULL) {
            *err = c->err;
        }
        destroy_partial(c);
        return st;
    }
    *out = c;
    return NS_OK;
}

void ns_cuda_destroy(ns_cuda **pc) {
    if (pc == NULL || *pc == NULL) {
        return;
    }
    ns_cuda *c = *pc;
    if (c->compute != NULL) {
        cudaStreamSynchronize(c->compute);
    }
    if (c->copy != NULL) {
        cudaStreamSynchronize(c->copy);
    }
    destroy_partial(c);
    *pc = NULL;
}

const ns_cuda_info *ns_cuda_get_info(const ns_cuda *c) {
    return &c->info;
}
const char *ns_cuda_errmsg(const ns_cuda *c) {
    return ns_err_msg(&c->err);
}
const ns_err *ns_cuda_err(const ns_cuda *c) {
    return &c->err;
}
ns_arena *ns_cuda_arena(ns_cuda *c) {
    return &c->arena;
}

void *ns_cuda_alloc(ns_cuda *c, size_t bytes, size_t align) {
    void *p = ns_arena_alloc(&c->arena, bytes, align);
    if (p == NULL) {
        char want[32], left[32];
        ns__err_set(&c->err, NS_ERR_CAPACITY, "cuda: arena full: need %s, %s left",
                    ns_format_size(bytes, want, sizeof want),
                    ns_format_size(ns_arena_remaining(&c->arena), left, sizeof left));
    }
    return p;
}

ns_status ns_cuda_sync(ns_cuda *c) {
    NS_CU(c, cudaStreamSynchronize(c->copy));
    NS_CU(c, cudaStreamSynchronize(c->compute));
    NS_CU(c, cudaGetLastError());
    return NS_OK;
}

ns_status ns_cuda_device_used(ns_cuda *c, uint64_t *used) {
    size_t free_b = 0, total_b = 0;
    NS_CU(c, cudaMemGetInfo(&free_b, &total_b));
    *used = total_b - free_b;
    return NS_OK;
}

/* ---- copies --------------------------------------------------------------- */

ns_status ns_cuda_h2d(ns_cuda *c, void *d_dst, const void *h_src, size_t bytes) {
    NS_CU(c, cudaMemcpyAsync(d_dst, h_src, bytes, cudaMemcpyHostToDevice, c->compute));
    return NS_OK;
}

ns_status ns_cuda_d2h(ns_cuda *c, void *h_dst, const void *d_src, size_t bytes) {
    NS_CU(c, cudaMemcpyAsync(h_dst, d_src, bytes, cudaMemcpyDeviceToHost, c->compute));
    return NS_OK;
}

ns_status ns_cuda_d2d(ns_cuda *c, void *d_dst, const void *d_src, size_t bytes) {
    NS_CU(c, cudaMemcpyAsync(d_dst, d_src, bytes, cudaMemcpyDeviceToDevice, c->compute));
    return NS_OK;
}

ns_status ns_cuda_memset(ns_cuda *c, void *d_dst, int value, size_t bytes) {
    NS_CU(c, cudaMemsetAsync(d_dst, value, bytes, c->compute));
    return NS_OK;
}

ns_status ns_cuda_host_alloc(ns_cuda *c, size_t bytes, void **h_out) {
    *h_out = NULL;
    NS_CU(c, cudaHostAlloc(h_out, bytes, cudaHostAllocPortable));
    return NS_OK;
}

void ns_cuda_host_free(ns_cuda *c, void *h) {
    (void)c;
    if (h != NULL) {
        cudaFreeHost(h);
    }
}

ns_status ns_cuda_host_register(ns_cuda *c, void *h, size_t bytes, bool read_only) {
    unsigned flags = cudaHostRegisterPortable | (read_only ? cudaHostRegisterReadOnly : 0u);
    NS_CU(c, cudaHostRegister(h, bytes, flags));
    return NS_OK;
}

void ns_cuda_host_unregister(ns_cuda *c, void *h) {
    (void)c;
    if (h != NULL) {
        cudaHostUnregister(h);
    }
}

/* ---- scratch ---------------------------------------------------------------- */

#define NS__MiB ((size_t)1 << 20)
#define NS__ALIGN ((size_t)256)

static ns_cuda_scratch_cfg scratch_defaults(const ns_cuda_scratch_cfg *in) {
    ns_cuda_scratch_cfg c = *in;
    if (c.gemm_dequant_bytes == 0) {
        c.gemm_dequant_bytes = 64 * NS__MiB;
    }
    if (c.cublas_ws_bytes == 0) {
        c.cublas_ws_bytes = 32 * NS__MiB;
    }
    if (c.attn_partial_bytes == 0) {
        c.attn_partial_bytes = 16 * NS__MiB;
    }
    return c;
}

/* Sizes of the device parts, in reservation order. Returns false on overflow. */
static bool scratch_parts(const ns_cuda_scratch_cfg *cfg, size_t parts[6]) {
    size_t x16;
    size_t embd = 0;
    if (cfg->max_tokens <= 0 || cfg->max_k <= 0) {
        return false;
    }
    if (!ns_mul_size((size_t)cfg->max_tokens, (size_t)cfg->max_k, &x16) || !ns_mul_size(x16, 2, &x16)) {
        return false;
    }
    if (cfg->embd_row_bytes != 0 && !ns_mul_size((size_t)cfg->max_tokens, cfg->embd_row_bytes, &embd)) {
        return false;
    }
    parts[0] = cfg->gemm_dequant_bytes;
    parts[1] = x16;
    parts[2] = cfg->cublas_ws_bytes;
    parts[3] = cfg->attn_partial_bytes;
    parts[4] = embd;
    parts[5] = cfg->embd_row_bytes != 0 ? (size_t)cfg->max_tokens * sizeof(int32_t) : 0;
    return true;
}

size_t ns_cuda_scratch_bytes(const ns_cuda_scratch_cfg *in) {
    ns_cuda_scratch_cfg cfg = scratch_defaults(in);
    size_t parts[6], total = 0;
    if (!scratch_parts(&cfg, parts)) {
        return 0;
    }
    for (int i = 0; i < 6; i++) {
        /* each part starts NS__ALIGN-aligned: worst-case padding included */
        if (!ns_add_size(total, ns_align_up(parts[i], NS__ALIGN), &total)) {
            return 0;
        }
    }
    return total;
}

ns_status ns_cuda_reserve_scratch(ns_cuda *c, const ns_cuda_scratch_cfg *in) {
    ns_cuda_scratch_cfg cfg = scratch_defaults(in);
    size_t parts[6];
    void *p[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
    if (c->scratch_ready) {
        return ns__err_set(&c->err, NS_ERR_STATE, "cuda: scratch already reserved");
    }
    if (!scratch_parts(&cfg, parts)) {
        return ns__err_set(&c->err, NS_ERR_INVALID_ARG, "cuda: bad scratch configuration");
    }
    /* the GEMM chunk must hold at least one 64-row tile of the widest K */
    if (cfg.gemm_dequant_bytes / ((size_t)cfg.max_k * 2) < 64) {
        return ns__err_set(&c->err, NS_ERR_INVALID_ARG, "cuda: gemm scratch too small for K=%lld",
                           (long long)cfg.max_k);
    }
    for (int i = 0; i < 6; i++) {
        if (parts[i] == 0) {
            continue;
        }
        p[i] = ns_cuda_alloc(c, parts[i], NS__ALIGN);
        if (p[i] == NULL) {
            return c->err.status;
        }
    }
    c->d_gemm_w16 = p[0];
    c->gemm_w16_bytes = parts[0];
    c->d_x16 = p[1];
    c->d_blas_ws = p[2];
    c->d_attn_part = (float *)p[3];
    c->attn_part_bytes = parts[3];
    c->d_embd_rows = p[4];
    c->d_embd_ids = (int32_t *)p[5];
    NS_CUBLAS(c, cublasSetWorkspace(c->blas, c->d_blas_ws, parts[2]));
    if (cfg.embd_row_bytes != 0) {
        NS_CU(c, cudaHostAlloc(&c->h_embd_rows, parts[4], cudaHostAllocDefault));
        NS_CU(c, cudaHostAlloc((void **)&c->h_embd_ids, parts[5], cudaHostAllocDefault));
        for (int i = 0; i < cfg.max_tokens; i++) {
            c->h_embd_ids[i] = i;
        }
        NS_CU(c, cudaMemcpyAsync(c->d_embd_ids, c->h_embd_ids, parts[5], cudaMemcpyHostToDevice, c->compute));
    }
    c->scratch = cfg;
    c->scratch_ready = true;
    return NS_OK;
}

/* ---- staging slots ----------------------------------------------------------- */

ns_status ns_cuda_staging_init(ns_cuda *c, int n_slots, size_t slot_bytes) {
    if (c->n_slots != 0) {
        return ns__err_set(&c->err, NS_ERR_STATE, "cuda: staging already initialised");
    }
    NS_CU_ARG(c, n_slots >= 2 && n_slots <= NS_CUDA_MAX_SLOTS && slot_bytes > 0);
    for (int i = 0; i < n_slots; i++) {
        ns_cuda_slot *s = &c->slots[i];
        s->d_ptr = ns_cuda_alloc(c, slot_bytes, NS__ALIGN);
        if (s->d_ptr == NULL) {
            return c->err.status;
        }
        NS_CU(c, cudaEventCreateWithFlags(&s->ready, cudaEventDisableTiming));
        NS_CU(c, cudaEventCreateWithFlags(&s->free_ev, cudaEventDisableTiming));
        s->free_recorded = false;
    }
    c->n_slots = n_slots;
    c->slot_bytes = slot_bytes;
    return NS_OK;
}

void *ns_cuda_staging_ptr(ns_cuda *c, int slot) {
    if (slot < 0 || slot >= c->n_slots) {
        return NULL;
    }
    return c->slots[slot].d_ptr;
}

ns_status ns_cuda_staging_upload(ns_cuda *c, int slot, const ns_cuda_copy_span *spans, int n_spans) {
    NS_CU_ARG(c, slot >= 0 && slot < c->n_slots && n_spans >= 0 && (n_spans == 0 || spans != NULL));
    ns_cuda_slot *s = &c->slots[slot];
    for (int i = 0; i < n_spans; i++) {
        NS_CU_ARG(c, spans[i].dst_offset <= c->slot_bytes && spans[i].bytes <= c->slot_bytes - spans[i].dst_offset);
    }
    /* The layer that last read this slot must have finished on the compute stream. */
    if (s->free_recorded) {
        NS_CU(c, cudaStreamWaitEvent(c->copy, s->free_ev, 0));
    }
    for (int i = 0; i < n_spans; i++) {
        NS_CU(c, cudaMemcpyAsync((uint8_t *)s->d_ptr + spans[i].dst_offset, spans[i].h_src, spans[i].bytes,
                                 cudaMemcpyHostToDevice, c->copy));
    }
    NS_CU(c, cudaEventRecord(s->ready, c->copy));
    return NS_OK;
}

ns_status ns_cuda_staging_acquire(ns_cuda *c, int slot) {
    NS_CU_ARG(c, slot >= 0 && slot < c->n_slots);
    NS_CU(c, cudaStreamWaitEvent(c->compute, c->slots[slot].ready, 0));
    return NS_OK;
}

ns_status ns_cuda_staging_release(ns_cuda *c, int slot) {
    NS_CU_ARG(c, slot >= 0 && slot < c->n_slots);
    NS_CU(c, cudaEventRecord(c->slots[slot].free_ev, c->compute));
    c->slots[slot].free_recorded = true;
    return NS_OK;
}
