/** @file
 * tensor/core.h - tensors, the autograd tape, errors and the runtime.
 *
 * A tn_tensor is both an n-d array (up to 4-D, element strides) and a node
 * of the reverse-mode tape. Two kinds of tensors exist:
 *
 *   - heap tensors (tn_tensor_new, tn_tensor_from, ...): owned by the
 *     caller, freed with tn_tensor_free. Parameters are heap tensors with
 *     requires_grad set; their gradient buffer lives as long as they do and
 *     accumulates across backward passes until tn_tensor_zero_grad.
 *   - tape tensors: every op result. They live in the tape's arena and are
 *     valid until tn_tape_reset or tn_tape_free; never free them.
 *
 * Errors: no library function exits or aborts on a user mistake. A failing
 * call returns NULL (or a non-zero tn_status) and records a message that
 * names the function and what was wrong, readable with tn_last_error().
 * Ops additionally make the tape's error sticky: once an op failed, later
 * ops on that tape return NULL without doing anything and tn_backward
 * refuses, so a training loop may check tn_tape_error() once per step.
 */
#ifndef TENSOR_CORE_H
#define TENSOR_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tensor/export.h"
#include "tensor/version.h" /* TN_VERSION_* (generated from CMake's project()) */

#ifdef __cplusplus
extern "C" {
#endif

#define TN_MAX_DIMS 4
#define TN_MAX_SRC  7

typedef enum tn_dtype {
    TN_F32 = 0, /* float, training */
    TN_F64 = 1, /* double, gradient checks */
    TN_I32 = 2, /* int32_t, indices and targets only (never differentiable) */
} tn_dtype;

typedef enum tn_status {
    TN_OK = 0,
    TN_ERR_SHAPE,   /* shapes do not fit the op */
    TN_ERR_DTYPE,   /* wrong or mixed dtypes */
    TN_ERR_INDEX,   /* index out of range */
    TN_ERR_ARG,     /* invalid argument (NULL, negative size, bad option) */
    TN_ERR_MEMORY,  /* allocation failed */
    TN_ERR_IO,      /* file could not be read or written */
    TN_ERR_FORMAT,  /* file content is corrupt or does not match */
    TN_ERR_NUMERIC, /* NaN/Inf seen in watch mode */
    TN_ERR_STATE,   /* call not valid now (e.g. backward on a failed tape) */
} tn_status;

typedef struct tn_tensor tn_tensor;
typedef struct tn_tape tn_tape;

/* The op that produced a tensor. The list and the op table live in
 * tensor/ops.h and src/ops; core only needs the integer. */
typedef int tn_op_id;

/* The public part of a tensor: a stable prefix of the library's own
 * record, which holds the tape's bookkeeping (the op, its inputs and
 * parameters; src/core/internal.h) after it. Only the library allocates
 * tensors (tn_tensor_new and friends, tape tensors from ops): never
 * declare a tn_tensor, allocate one or copy one by value, and pass the
 * library only pointers it returned. Read any field; write only the
 * elements behind data and grad, and name. What the tape recorded is
 * available through tn_tape_node and tn_tensor_op_name (tensor/ops.h). */
struct tn_tensor {
    tn_dtype dtype;
    int ndim;
    int64_t shape[TN_MAX_DIMS];  /* unused trailing dims are 1 */
    int64_t stride[TN_MAX_DIMS]; /* in elements; unused trailing dims 1 */
    void *data;                  /* first element (views point inside a base) */
    void *grad;                  /* same layout as data; NULL until needed */
    bool requires_grad;          /* gradient wanted (parameter or derived) */
    const char *name;            /* optional, not owned (e.g. "weight_ih_l0") */
};

/* ---- version ------------------------------------------------------------ */

/** Version of the library linked at run time, "MAJOR.MINOR.PATCH" (a static
 * string). TN_VERSION_STRING is the version of the headers compiled
 * against; the two differ when a program runs with another libtensor.so
 * than it was built with. */
TN_API const char *tn_version(void);

/* ---- errors ------------------------------------------------------------ */

/** Message of the most recent failure in this thread ("" if none). The
 * string stays valid until the next failing call in this thread. */
TN_API const char *tn_last_error(void);
/** Status code of the most recent failure in this thread (TN_OK if none). */
TN_API tn_status tn_last_status(void);
/** Forget the last error of this thread. */
TN_API void tn_clear_error(void);
/** Record a failure as the library's own calls do (printf-style message,
 * starting with what failed), and return st: for code that reports
 * through tn_last_error() like the library, such as a tn_custom op's
 * forward, a callback, or a library built on this one (tensor_dist). */
TN_API tn_status tn_set_error(tn_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/** Name of a status code, e.g. "shape error". */
TN_API const char *tn_status_name(tn_status st);

/* ---- allocator hooks -------------------------------------------------- */

/** Replace the allocator used for every heap allocation of the library
 * (tensors, arenas, scratch). Pass NULL for both to restore malloc.
 * Must be called while no library object is alive. */
TN_API void tn_set_allocator(void *(*alloc_fn)(size_t), void (*free_fn)(void *));
/** @{ */
/** Allocate/free with the current hooks (64-byte aligned for alloc). */
TN_API void *tn_alloc(size_t nbytes);
TN_API void tn_free(void *p);
/** @} */
/** A copy of the string s from tn_alloc (free it with tn_free); NULL when
 * out of memory (with tn_last_error set). */
TN_API char *tn_strdup(const char *s);

/* ---- dtype and shape helpers ------------------------------------------- */

/** Bytes per element of dt (4, 8 or 4). */
TN_API size_t tn_dtype_size(tn_dtype dt);
/** Name of dt: "float32", "float64", "int32" (a static string). */
TN_API const char *tn_dtype_name(tn_dtype dt);
/** Number of elements. */
TN_API int64_t tn_numel(const tn_tensor *t);
/** True when the elements are laid out row-major without gaps. */
TN_API bool tn_is_contiguous(const tn_tensor *t);
/** Writes "[2, 3, 4]" into buf (always NUL-terminated); returns buf. */
TN_API char *tn_shape_str(const tn_tensor *t, char *buf, size_t n);

/* ---- heap tensors ------------------------------------------------------- */

/** New zero-filled contiguous tensor of the given shape (ndim 1..4, every
 * size >= 1). Caller owns it; NULL on error. */
TN_API tn_tensor *tn_tensor_new(tn_dtype dt, int ndim, const int64_t *shape);
/** Same, copying n = numel elements from data (of type dt). */
TN_API tn_tensor *tn_tensor_from(tn_dtype dt, int ndim, const int64_t *shape, const void *data);
/** Same, filled with value. */
TN_API tn_tensor *tn_tensor_full(tn_dtype dt, int ndim, const int64_t *shape, double value);
/** Free a heap tensor and its gradient. NULL is a no-op; tape tensors are
 * ignored (the tape owns them). */
TN_API void tn_tensor_free(tn_tensor *t);
/** Mark a heap tensor as a parameter: allocates its zeroed gradient.
 * Returns TN_OK, or an error for tape/I32 tensors. */
TN_API tn_status tn_tensor_set_requires_grad(tn_tensor *t, bool on);
/** Zero the gradient (no-op when there is none). */
TN_API void tn_tensor_zero_grad(tn_tensor *t);
/** Element i (row-major logical index over the shape) as double; NaN
 * with tn_last_error set when t is NULL or i is outside 0..numel-1. */
TN_API double tn_tensor_get(const tn_tensor *t, int64_t i);
/** Set element i (row-major logical index) to v. Returns TN_OK, or
 * TN_ERR_ARG (nothing written) when t is NULL, i is outside 0..numel-1, or
 * t is int32 and v is not an integer in int32's range. */
TN_API tn_status tn_tensor_set(tn_tensor *t, int64_t i, double v);
/** @{ */
/** The elements of a contiguous tensor of that dtype, for programs that
 * fill inputs or read outputs in bulk (element i, row-major, at [i]).
 * NULL with tn_last_error set when t is NULL, of another dtype, or not
 * contiguous (a strided view: use tn_tensor_get/set or tn_contiguous). */
TN_API float *tn_tensor_data_f32(tn_tensor *t);
TN_API double *tn_tensor_data_f64(tn_tensor *t);
TN_API int32_t *tn_tensor_data_i32(tn_tensor *t);
/** @} */
/** Gradient element i (row-major logical index); 0 when there is no grad;
 * NaN with tn_last_error set when t is NULL or i is out of range. */
TN_API double tn_tensor_grad_get(const tn_tensor *t, int64_t i);
/** Copy values from src to dst (same shape; dtypes may differ, converting).
 * Works for heap and tape tensors; does not touch gradients or the tape. */
TN_API tn_status tn_tensor_copy(tn_tensor *dst, const tn_tensor *src);
/** Copy all elements into out (numel doubles, row-major, converted).
 * Returns TN_OK, or TN_ERR_ARG when t or out is NULL. */
TN_API tn_status tn_tensor_to_double(const tn_tensor *t, double *out);
/** Fill every element with value (in place; views write into their base).
 * Returns TN_OK, or TN_ERR_ARG (nothing written) when t is NULL or t is
 * int32 and value is not an integer in int32's range. */
TN_API tn_status tn_tensor_fill(tn_tensor *t, double value);

/* ---- random numbers ----------------------------------------------------- */

/* A small portable generator (xoshiro256**, seeded through splitmix64):
 * the same seed gives the same numbers on every machine and build. */
typedef struct tn_rng {
    uint64_t s[4];
} tn_rng;

/** Seed r (any value, 0 included) through splitmix64. */
TN_API void tn_rng_seed(tn_rng *r, uint64_t seed);
/** Next 64 random bits of r. */
TN_API uint64_t tn_rng_next(tn_rng *r);
/** Uniform double in [0, 1) with 53 random bits. */
TN_API double tn_rng_uniform(tn_rng *r);
/** Standard normal (Box-Muller, no cached second value, so the state alone
 * determines the stream). */
TN_API double tn_rng_normal(tn_rng *r);
/** @{ */
/** Fill t in place with uniform values in [lo, hi), or normal values of
 * the given mean and standard deviation; r advances. Returns TN_OK, or
 * TN_ERR_ARG (t or r NULL) or TN_ERR_DTYPE (an int32 t), nothing written.
 * (tn_init_uniform and tn_init_normal in tensor/optim.h check the range
 * too.) */
TN_API tn_status tn_tensor_uniform(tn_tensor *t, tn_rng *r, double lo, double hi);
TN_API tn_status tn_tensor_normal(tn_tensor *t, tn_rng *r, double mean, double std);
/** @} */

/* ---- the tape ------------------------------------------------------------ */

/** New empty tape. Intermediates are carved from its arena, which grows in
 * chunks as needed and is reused after tn_tape_reset, so a steady-state
 * training step allocates nothing. Free with tn_tape_free. */
TN_API tn_tape *tn_tape_new(void);
/** Free the tape and every tensor it owns. NULL is a no-op. */
TN_API void tn_tape_free(tn_tape *tp);
/** Forget every recorded op and tape tensor (they become invalid), clear the
 * sticky error, keep the arena memory for reuse. Heap tensors (parameters)
 * and their gradients are untouched. */
TN_API void tn_tape_reset(tn_tape *tp);
/** Sticky error of the tape: the message of the first failed op since the
 * last reset, or NULL when all is well. */
TN_API const char *tn_tape_error(const tn_tape *tp);
/** Status of that sticky error: TN_OK when all is well, TN_ERR_ARG for a
 * NULL tape. */
TN_API tn_status tn_tape_status(const tn_tape *tp);
/** @{ */
/** Gradient recording on (default) or off. With it off, ops compute results
 * but record no inputs (no-grad mode for inference and sampling). Returns
 * the previous setting (false, nothing set, for a NULL tape; the getter
 * returns false for NULL). */
TN_API bool tn_tape_set_grad(tn_tape *tp, bool enabled);
TN_API bool tn_tape_grad_enabled(const tn_tape *tp);
/** @} */
/** @{ */
/** Training mode (default true): dropout is the identity when false. The
 * setter returns TN_OK, or TN_ERR_ARG for a NULL tape; the getter returns
 * false for NULL. */
TN_API tn_status tn_tape_set_training(tn_tape *tp, bool training);
TN_API bool tn_tape_training(const tn_tape *tp);
/** @} */
/** NaN/Inf watch: when on, every op checks its output and the first op that
 * produced a non-finite value fails the tape naming itself. Returns TN_OK,
 * or TN_ERR_ARG for a NULL tape. */
TN_API tn_status tn_tape_set_watch(tn_tape *tp, bool on);
/** Random generator used by stochastic ops (dropout) on this tape (owned
 * by the tape; NULL for a NULL tape). */
TN_API tn_rng *tn_tape_rng(tn_tape *tp);
/** Bytes currently held by the arena (0 for a NULL tape). */
TN_API size_t tn_tape_arena_capacity(const tn_tape *tp);
/** Number of ops recorded since the last reset (0 for a NULL tape). */
TN_API size_t tn_tape_size(const tn_tape *tp);
/** The op recorded at position i (0-based, in recording order) since the
 * last reset, or NULL when i >= tn_tape_size. Owned by the tape. */
TN_API tn_tensor *tn_tape_node(const tn_tape *tp, size_t i);
/** For gradient checks (tn_gradcheck_blame): from now on, whenever the op
 * at position `node` is recorded, add delta to element `index` (row-major)
 * of its result right after it is computed, so that every later op sees
 * the changed value. node < 0 turns it off (the default); tn_tape_reset
 * keeps the setting, so one probe can be replayed by resetting and
 * recording again. Returns TN_OK, or TN_ERR_ARG for a NULL tape. */
TN_API tn_status tn_tape_set_probe(tn_tape *tp, int64_t node, int64_t index, double delta);

/** Scratch memory from the arena, valid until reset; 64-byte aligned,
 * uninitialised. NULL (and a sticky error) when out of memory. */
TN_API void *tn_tape_alloc(tn_tape *tp, size_t nbytes);
/** New contiguous tape tensor (zero-filled), not recorded as an op.
 * Use for inputs built per step. */
TN_API tn_tensor *tn_tape_tensor(tn_tape *tp, tn_dtype dt, int ndim, const int64_t *shape);

/* Backward: see tn_backward in tensor/ops.h (the engine dispatches over
 * the op table, which lives above core). */

/* ---- runtime: threads and BLIS ------------------------------------------ */

/** Threads. The library may be used from several threads at once with
 * these rules: a tape, and every tensor on it, belongs to one thread at a
 * time; a parameter set, optimizer or heap tensor is written by one thread
 * at a time (reading it from several threads is fine while nobody writes
 * it). Separate models on separate tapes in separate threads need no
 * locking. tn_set_allocator and tn_set_num_threads are process-wide
 * settings; error messages (tn_last_error) are per thread.
 *
 * tn_runtime_init initialises the runtime (done once per process, by
 * whichever thread comes first; every op does it lazily): picks the kernel
 * path (see tn_isa_active) and the BLIS sub-configuration (see
 * tn_blis_config), sets the thread count: TN_NUM_THREADS, else
 * OMP_NUM_THREADS (its first entry), else the CPUs the process may run on
 * (its affinity mask) divided by the processes an MPI launcher started on
 * this node (OMPI_COMM_WORLD_LOCAL_SIZE or MPI_LOCALNRANKS). Choosing BLIS's configuration may set BLIS_ARCH_TYPE
 * with setenv, which is not safe while another thread reads the
 * environment: call this (or tn_set_num_threads) before starting threads,
 * and before any other code of the process calls BLIS. Returns TN_OK, or
 * TN_ERR_ARG when the environment asks for something impossible (an
 * unknown or unsupported TN_ISA, a TN_NUM_THREADS or OMP_NUM_THREADS that
 * is not an integer from 1 to 1024): the message is in tn_last_error() and
 * stays in tn_runtime_error(); every op then fails with it. */
TN_API tn_status tn_runtime_init(void);
/** The message of a failed runtime initialisation ("" when it succeeded). */
TN_API const char *tn_runtime_error(void);
/** @{ */
/** Number of threads for both OpenMP loops and BLIS GEMMs, for every
 * thread that calls the library from then on. Returns TN_OK, or TN_ERR_ARG
 * (nothing changed) when n is outside 1..1024, or the runtime's error when
 * it could not initialise. */
TN_API tn_status tn_set_num_threads(int n);
TN_API int tn_num_threads(void);
/** The threads the library runs on now: tn_num_threads(), or fewer while
 * other processes keep the cores busy. OpenMP's and BLIS's barriers spin,
 * so a team as large as the machine slows down many times (measured 30-75x
 * on 2 cores) when another process takes a core; on Linux the runtime
 * therefore counts, at most every 0.1 s, the running threads of other
 * processes (/proc/loadavg minus this process's) and uses min(N, cores -
 * others) threads, at least 1, once two counts in a row agree; back to N
 * when the cores free up. Results that do not depend on the thread count
 * (the recurrent and element-wise kernels) do not depend on it either. */
TN_API int tn_num_threads_active(void);
/** Turn the back-off of tn_num_threads_active on (the default) or off (the
 * library then always runs on tn_num_threads()); also TN_THREAD_BACKOFF=0
 * or 1 in the environment at initialisation (anything else is a runtime
 * error). Returns TN_OK or the runtime's error. */
TN_API tn_status tn_set_thread_backoff(bool on);
/** @} */
/** @{ */
/** Name of the active BLIS sub-configuration (e.g. "skx"), and how it was
 * chosen ("auto", "forced: cpu has AVX-512", "user BLIS_ARCH_TYPE=3"). */
TN_API const char *tn_blis_config(void);
TN_API const char *tn_blis_config_reason(void);
/** @} */
/** Denormals: the library computes with flush-to-zero and
 * denormals-are-zero on (x86), in its worker threads and, during each
 * computation, in the calling thread, whose own mode is restored before
 * the call returns. tn_flush_denormals turns both on in the calling thread
 * for good (for a program's own loops). */
TN_API void tn_flush_denormals(void);

/** Kernel paths of the library's own hot loops (gate rows, exp loops,
 * column sums), by instruction-set level: generic (the compiler's default
 * target: SSE2 on x86-64, NEON on aarch64), avx2 (x86-64-v3: AVX2 + FMA)
 * and avx512 (x86-64-v4). GEMMs and the recurrent per-step products run on
 * BLIS's micro-kernels of its active configuration. */
typedef enum tn_isa {
    TN_ISA_GENERIC = 0,
    TN_ISA_AVX2 = 1,
    TN_ISA_AVX512 = 2,
} tn_isa;
/** The path in use: the highest this CPU supports, or the lower one that the
 * environment variable TN_ISA (avx512, avx2, generic) forces. With TN_ISA
 * set and BLIS_ARCH_TYPE not set, BLIS's configuration follows it: skx for
 * avx512, haswell for avx2, generic for generic. */
TN_API tn_isa tn_isa_active(void);
/** The highest path this CPU supports (no override). */
TN_API tn_isa tn_isa_cpu(void);
/** "generic", "avx2" or "avx512" (static string). */
TN_API const char *tn_isa_name(tn_isa isa);

#ifdef __cplusplus
}
#endif
#endif
