/*
 * quant.h - reference (plain C) quantization and dequantization of ggml's
 * tensor formats.
 *
 * Dequantization reproduces llama.cpp's `to_float` bit for bit for F32, F16,
 * BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL
 * and IQ4_XS (checked against ../shared/reference/quant/quant-vectors.gguf).
 * The quantizer accepts the same 15 types; it is not bit-identical to
 * llama.cpp's but uses the same kind of error-minimising scale search, and is
 * tested to be at least as accurate. The activation formats Q8_1 and Q8_K
 * (used by the CPU dot products) are accepted by both functions as well.
 * Every other type id (IQ2_XXS, TQ1_0, MXFP4, ...) gives NS_ERR_UNSUPPORTED.
 *
 * Memory: callers own every buffer; nothing is allocated.
 * Thread safety: every function is reentrant (no global state).
 */
#ifndef NS_QUANT_H
#define NS_QUANT_H

#include <stdbool.h>
#include <stdint.h>

#include "ns_status.h"
#include "ns_types.h"

/* True when ns_dequantize_row / ns_quantize_row accept type `t`. */
bool ns_quant_supported(ns_type t);

/* Dequantize one row of `n` elements of type `t` from `src` (n / blck
 * blocks, ns_type_row_size(t, n) bytes) into dst[0..n).
 * Errors: NS_ERR_UNSUPPORTED for types not handled here (dst untouched);
 * NS_ERR_INVALID_ARG when n < 0, n is not a multiple of the block size, or a
 * pointer is NULL while n > 0. */
ns_status ns_dequantize_row(ns_type t, const void *src, float *dst, int64_t n);

/* Quantize src[0..n) into one row of type `t` at `dst`
 * (ns_type_row_size(t, n) bytes). Non-finite inputs give unspecified (but
 * memory-safe) blocks. Errors as ns_dequantize_row. */
ns_status ns_quantize_row(ns_type t, const float *src, void *dst, int64_t n);

/* Dequantize n_rows rows of row_len elements. Rows are contiguous in `src`
 * (ns_type_row_size(t, row_len) bytes apart) and in `dst` (row_len floats
 * apart). Errors as ns_dequantize_row, plus NS_ERR_INVALID_ARG when n_rows
 * is negative. */
ns_status ns_dequantize_tensor(ns_type t, const void *src, float *dst, int64_t n_rows, int64_t row_len);

/* Quantize n_rows rows of row_len floats into contiguous rows of type t. */
ns_status ns_quantize_tensor(ns_type t, const float *src, void *dst, int64_t n_rows, int64_t row_len);

#endif /* NS_QUANT_H */
