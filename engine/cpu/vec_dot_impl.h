/*
 * vec_dot_impl.h - private: per-ISA kernel tables behind vec_dot.h's
 * dispatch. Thread safety: the tables are immutable.
 */
#ifndef NS_CPU_VEC_DOT_IMPL_H
#define NS_CPU_VEC_DOT_IMPL_H

#include "vec_dot.h"

/* True when this CPU and OS run AVX2 + FMA + F16C code (cheap: reads the
 * feature table libgcc fills at start-up). */
int ns__cpu_has_avx2(void);

/* AVX2+FMA+F16C kernels for weight type t (NULL when the build is not
 * x86-64 or t has none). The caller must have checked the CPU supports it. */
const ns_vec_dot_traits *ns__vec_dot_avx2_get(ns_type t);

#endif /* NS_CPU_VEC_DOT_IMPL_H */
