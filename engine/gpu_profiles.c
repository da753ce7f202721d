/*
 * gpu_profiles.c - named GPU profiles for `nightshift plan --device NAME`.
 *
 * Nominal numbers, so a user without the card can ask "what would this model
 * do on my GPU?". `--measure` replaces them with this machine's measured
 * values; `--pcie-gbps`, `--hbm-gbps` and `--tflops` override single fields.
 *
 * Conventions (all documented in docs/memory.md):
 *  - pcie_gbps is the *effective* pinned host->device cudaMemcpyAsync rate,
 *    not the link rate. PCIe 4.0 x16 is 16 GT/s x 16 lanes x 128/130 = 31.5
 *    GB/s raw; after TLP/DLLP overhead pinned copies reach about 25-26 GB/s
 *    (NVIDIA bandwidthTest on Ampere/Ada desktops), so we use 25. PCIe 5.0
 *    x16 doubles the raw rate (63 GB/s); measured pinned H2D on H100 hosts is
 *    about 50-55 GB/s, so we use 50.
 *  - tflops is the dense (no 2:4 sparsity) fp16-input tensor-core GEMM rate
 *    with fp32 accumulation, which is what the engine's cuBLAS calls use
 *    (CUBLAS_COMPUTE_32F keeps logits equal between the resident and streamed
 *    paths). GeForce cards run fp32 accumulation at half their fp16-accumulate
 *    rate; data-center cards run both at full rate. The fp16-accumulate and
 *    sparse figures marketing quotes are 2x or 4x these.
 *  - hbm_gbps is the data-sheet memory bandwidth.
 *
 * Sources:
 *  - NVIDIA Ampere GA102 GPU Architecture whitepaper (2020), table 9: RTX 3090
 *    82 SMs, 936 GB/s, 71 TFLOPS fp16 tensor dense with fp32 accumulate (142
 *    with fp16 accumulate). RTX 3060 (GA106) data sheet: 28 SMs, 12 GB 192-bit
 *    GDDR6 at 15 Gbps = 360 GB/s, 101 "tensor TFLOPS" (fp16, sparse, fp16
 *    accumulate) -> 25.3 dense with fp32 accumulate.
 *  - NVIDIA Ada GPU Architecture whitepaper (2022), appendix table: RTX 4090
 *    128 SMs, 1008 GB/s, 165.2 TFLOPS fp16 tensor dense with fp32 accumulate.
 *  - NVIDIA L4 data sheet (2023): 24 GB, 300 GB/s, 242 TFLOPS fp16 tensor
 *    with sparsity -> 121 dense; 58 SMs; PCIe 4.0 x16.
 *  - NVIDIA A100 data sheet (2021): 80 GB SXM 2039 GB/s, 80 GB PCIe 1935
 *    GB/s, 312 TFLOPS fp16 tensor dense; 108 SMs; host link PCIe 4.0 x16.
 *  - NVIDIA H100 data sheet (2023): SXM5 80 GB 3.35 TB/s and 989 TFLOPS fp16
 *    tensor dense (1979 sparse), 132 SMs; PCIe 80 GB 2.0 TB/s and 756 TFLOPS
 *    dense, 114 SMs; host link PCIe 5.0 x16.
 *  - NVIDIA H200 data sheet (2024): 141 GB HBM3e, 4.8 TB/s, same SM array as
 *    H100 SXM (989 TFLOPS fp16 dense); PCIe 5.0 x16.
 *
 * Thread safety: the table is immutable.
 */
#include <stddef.h>
#include <strings.h>

#include "planner.h"

#define GIB (1024ull * 1024ull * 1024ull)
#define PCIE4 25.0
#define PCIE5 50.0
#define LAYER_OVH 20e-6
#define STEP_OVH 200e-6

#define PROFILE(id, description, pcie, hbm, tf, sms, vram)                                                             \
    {                                                                                                                  \
        id, description, {                                                                                             \
            id, pcie, hbm, tf, sms, (uint64_t)(vram)*GIB, LAYER_OVH, STEP_OVH                                          \
        }                                                                                                              \
    }

static const ns_gpu_profile g_profiles[] = {
    PROFILE("rtx3060-12gb", "GeForce RTX 3060 12 GB, PCIe 4.0 x16", PCIE4, 360.0, 25.3, 28, 12),
    PROFILE("rtx3090-24gb", "GeForce RTX 3090 24 GB, PCIe 4.0 x16", PCIE4, 936.0, 71.0 / 2.0, 82, 24),
    PROFILE("rtx4090-24gb", "GeForce RTX 4090 24 GB, PCIe 4.0 x16", PCIE4, 1008.0, 165.2, 128, 24),
    PROFILE("l4-24gb", "L4 24 GB, PCIe 4.0 x16", PCIE4, 300.0, 121.0, 58, 24),
    PROFILE("a100-80gb", "A100 80 GB SXM4, PCIe 4.0 x16 host link", PCIE4, 2039.0, 312.0, 108, 80),
    PROFILE("a100-80gb-pcie", "A100 80 GB PCIe, PCIe 4.0 x16", PCIE4, 1935.0, 312.0, 108, 80),
    PROFILE("h100-80gb-pcie", "H100 80 GB PCIe, PCIe 5.0 x16", PCIE5, 2000.0, 756.0, 114, 80),
    PROFILE("h100-80gb-sxm", "H100 80 GB SXM5, PCIe 5.0 x16 host link", PCIE5, 3350.0, 989.0, 132, 80),
    PROFILE("h200-141gb", "H200 141 GB SXM, PCIe 5.0 x16 host link", PCIE5, 4800.0, 989.0, 132, 141),
};

size_t ns_gpu_profile_count(void) {
    return sizeof g_profiles / sizeof g_profiles[0];
}

const ns_gpu_profile *ns_gpu_profile_at(size_t i) {
    return i < ns_gpu_profile_count() ? &g_profiles[i] : NULL;
}

const ns_gpu_profile *ns_gpu_profile_find(const char *name) {
    if (name == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < ns_gpu_profile_count(); i++) {
        if (strcasecmp(g_profiles[i].name, name) == 0) {
            return &g_profiles[i];
        }
    }
    return NULL;
}

const ns_gpu_profile *ns_gpu_profile_default(void) {
    return &g_profiles[0];
}
