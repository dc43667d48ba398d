/* tests/test_limits.c - huge shapes and sizes are refused, never wrapped
 * (issue 10, D1). Every case here overflowed silently before: the dimension
 * product, numel x element size, the allocation headers, reshape's product
 * and narrow's start + len. Each must now fail with the right status and a
 * message naming the function and the shape; under ASan nothing may be
 * read or written out of bounds. */
#include "check.h"
#include "tensor/tensor.h"

#include <stdint.h>

/* An allocator that refuses blocks above 1 GiB, so "valid but too big to
 * allocate" shapes fail the same way under ASan (whose malloc aborts on
 * absurd sizes) as in a release build. */
static void *small_alloc(size_t n) { return n > ((size_t)1 << 30) ? NULL : malloc(n); }

int main(void)
{
    const int64_t G31 = (int64_t)1 << 31;

    /* creation: 2^62 float32 elements = 2^64 bytes wraps size_t */
    tn_clear_error();
    tn_tensor *t = tn_tensor_full(TN_F32, 2, (int64_t[]){G31, G31}, 1.0);
    CHECK(t == NULL && tn_last_status() == TN_ERR_SHAPE);
    CHECK_MSG(tn_last_error(), "tn_tensor_full");
    CHECK_MSG(tn_last_error(), "[2147483648, 2147483648]");
    CHECK_MSG(tn_last_error(), "too large");
    /* the product itself overflows int64 */
    t = tn_tensor_new(TN_F64, 3, (int64_t[]){INT64_MAX, 2, 2});
    CHECK(t == NULL && tn_last_status() == TN_ERR_SHAPE);
    t = tn_tensor_new(TN_I32, 4, (int64_t[]){G31, G31, G31, G31});
    CHECK(t == NULL && tn_last_status() == TN_ERR_SHAPE);
    t = tn_tensor_from(TN_F32, 1, (int64_t[]){INT64_MAX}, (float[]){0});
    CHECK(t == NULL && tn_last_status() == TN_ERR_SHAPE);
    /* zero and negative sizes are still "invalid", not "too large" */
    t = tn_tensor_new(TN_F32, 2, (int64_t[]){0, 3});
    CHECK(t == NULL && tn_last_status() == TN_ERR_SHAPE);
    CHECK_MSG(tn_last_error(), "invalid shape [0, 3]");

    /* a shape within the limits that the allocator cannot serve: memory */
    tn_set_allocator(small_alloc, free);
    t = tn_tensor_new(TN_F32, 2, (int64_t[]){(int64_t)1 << 20, (int64_t)1 << 20});
    CHECK(t == NULL && tn_last_status() == TN_ERR_MEMORY);
    CHECK_MSG(tn_last_error(), "tn_tensor_new: out of memory");
    CHECK_MSG(tn_last_error(), "[1048576, 1048576]");
    tn_set_allocator(NULL, NULL);

    /* the allocation header: nbytes + 72 must not wrap to a tiny block */
    CHECK(tn_alloc(SIZE_MAX) == NULL && tn_last_status() == TN_ERR_MEMORY);
    CHECK(tn_alloc(SIZE_MAX - 40) == NULL && tn_last_status() == TN_ERR_MEMORY);

    tn_tape *tp = tn_tape_new();
    /* the arena: nbytes + 63 rounding must not wrap */
    CHECK(tn_tape_alloc(tp, SIZE_MAX - 10) == NULL);
    CHECK(tn_last_status() == TN_ERR_MEMORY);
    tn_tape_reset(tp);
    CHECK(tn_tape_tensor(tp, TN_F32, 2, (int64_t[]){G31, G31}) == NULL);
    CHECK(tn_last_status() == TN_ERR_SHAPE);
    CHECK_MSG(tn_tape_error(tp), "tn_tape_tensor");
    tn_tape_reset(tp);

    /* views: reshape of 4 elements to [2^62 + 1, 4] (the product wraps to 4) */
    tn_tensor *x = tn_tensor_full(TN_F32, 1, (int64_t[]){4}, 1.0);
    tn_tensor *r = tn_reshape(tp, x, 2, (int64_t[]){((int64_t)1 << 62) + 1, 4});
    CHECK(r == NULL && tn_last_status() == TN_ERR_SHAPE);
    CHECK_MSG(tn_tape_error(tp), "reshape");
    tn_tape_reset(tp);
    r = tn_reshape(tp, x, 3, (int64_t[]){INT64_MAX, INT64_MAX, -1});
    CHECK(r == NULL && tn_last_status() == TN_ERR_SHAPE);
    tn_tape_reset(tp);
    /* narrow(x [4], 0, start 2, len INT64_MAX - 1): start + len wraps */
    r = tn_narrow(tp, x, 0, 2, INT64_MAX - 1);
    CHECK(r == NULL && tn_last_status() == TN_ERR_INDEX);
    CHECK_MSG(tn_tape_error(tp), "narrow");
    tn_tape_reset(tp);
    r = tn_narrow(tp, x, 0, INT64_MAX, 1);
    CHECK(r == NULL && tn_last_status() == TN_ERR_INDEX);
    tn_tape_reset(tp);
    /* the legal extremes still work */
    r = tn_narrow(tp, x, 0, 3, 1);
    CHECK(r != NULL && tn_numel(r) == 1);
    r = tn_reshape(tp, x, 2, (int64_t[]){-1, 4});
    CHECK(r != NULL && r->shape[0] == 1);
    tn_tensor *s = tn_sum(tp, tn_reshape(tp, x, 2, (int64_t[]){2, 2}));
    CHECK(s && tn_tensor_get(s, 0) == 4.0); /* exact: four ones */
    tn_tape_free(tp);
    tn_tensor_free(x);
    return check_report("test_limits");
}
