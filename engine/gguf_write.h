/*
 * gguf_write.h - streaming GGUF v3 writer.
 *
 * Declare everything first (metadata with the set_* calls, tensors with
 * add_tensor), then ns_gguf_writer_begin() writes the header, metadata and
 * tensor infos. Tensor data is then streamed with write_data() in declaration
 * order and in any chunk sizes; the writer inserts alignment padding between
 * tensors. ns_gguf_writer_finish() checks that every byte was written.
 * This lets `synth` write a 40 GB file without holding it in memory.
 *
 * Ownership: the writer copies keys, names and metadata values. It owns the
 * FILE it opens. Thread safety: none.
 */
#ifndef NS_GGUF_WRITE_H
#define NS_GGUF_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"
#include "ns_status.h"

typedef struct ns_gguf_writer ns_gguf_writer;

ns_status ns_gguf_writer_new(ns_gguf_writer **out);
void ns_gguf_writer_free(ns_gguf_writer **w); /* NULL-safe; closes an unfinished file */

/* Metadata (a key set twice keeps the last value). */
ns_status ns_gguf_writer_set_u8(ns_gguf_writer *w, const char *key, uint8_t v);
ns_status ns_gguf_writer_set_i8(ns_gguf_writer *w, const char *key, int8_t v);
ns_status ns_gguf_writer_set_u16(ns_gguf_writer *w, const char *key, uint16_t v);
ns_status ns_gguf_writer_set_i16(ns_gguf_writer *w, const char *key, int16_t v);
ns_status ns_gguf_writer_set_u32(ns_gguf_writer *w, const char *key, uint32_t v);
ns_status ns_gguf_writer_set_i32(ns_gguf_writer *w, const char *key, int32_t v);
ns_status ns_gguf_writer_set_u64(ns_gguf_writer *w, const char *key, uint64_t v);
ns_status ns_gguf_writer_set_i64(ns_gguf_writer *w, const char *key, int64_t v);
ns_status ns_gguf_writer_set_f32(ns_gguf_writer *w, const char *key, float v);
ns_status ns_gguf_writer_set_f64(ns_gguf_writer *w, const char *key, double v);
ns_status ns_gguf_writer_set_bool(ns_gguf_writer *w, const char *key, bool v);
ns_status ns_gguf_writer_set_str(ns_gguf_writer *w, const char *key, const char *v, size_t len);
/* Numeric array: `n` elements of `elem_type` (not STRING/ARRAY), little-endian. */
ns_status ns_gguf_writer_set_arr(ns_gguf_writer *w, const char *key, ns_gguf_vtype elem_type, const void *data,
                                 uint64_t n);
/* String array: n strings with their lengths (lens may be NULL for C strings). */
ns_status ns_gguf_writer_set_arr_str(ns_gguf_writer *w, const char *key, const char *const *strs, const uint64_t *lens,
                                     uint64_t n);
/* Copy one metadata entry from an open file (used to copy a tokenizer). */
ns_status ns_gguf_writer_copy_kv(ns_gguf_writer *w, const ns_gguf_kv *kv);

/* Declare a tensor. ne[0] is the fastest dim; n_dims in 1..4. */
ns_status ns_gguf_writer_add_tensor(ns_gguf_writer *w, const char *name, ns_type type, uint32_t n_dims,
                                    const int64_t *ne);

/* Create `path` and write header, metadata and tensor infos. */
ns_status ns_gguf_writer_begin(ns_gguf_writer *w, const char *path, ns_err *err);
/* Append tensor bytes (in declaration order, any chunking). */
ns_status ns_gguf_writer_write_data(ns_gguf_writer *w, const void *buf, size_t n, ns_err *err);
/* Check completeness, flush and close. */
ns_status ns_gguf_writer_finish(ns_gguf_writer *w, ns_err *err);

#endif /* NS_GGUF_WRITE_H */
