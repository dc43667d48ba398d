/* tests/fixture_check.h - the PyTorch parity tests' glue between a fixture
 * (fixture.h) and the library: a required tensor (a failed check when
 * absent), a fixture tensor as a library tensor, and opening a test's
 * fixture file. Include after check.h. */
#ifndef TN_TEST_FIXTURE_CHECK_H
#define TN_TEST_FIXTURE_CHECK_H

#include "check.h"
#include "fixture.h"

/* The tensor called name, counting a failed check when it is absent. */
static inline const fixture_tensor *fixture_need(const fixture *fx, const char *name)
{
    const fixture_tensor *t = fixture_get(fx, name);
    CHECK_MSG(t ? name : "(missing)", name);
    return t;
}

/* A new heap tensor of dtype dt with f's shape (a scalar as [1]) and
 * values; NULL for a NULL f. */
static inline tn_tensor *fixture_to_tensor(const fixture_tensor *f, tn_dtype dt)
{
    if (!f)
        return NULL;
    int64_t shape[4] = {1, 1, 1, 1};
    int nd = f->ndim ? f->ndim : 1;
    for (int k = 0; k < f->ndim; k++)
        shape[k] = f->shape[k];
    tn_tensor *t = tn_tensor_new(dt, nd, shape);
    for (int64_t i = 0; t && i < f->numel; i++)
        tn_tensor_set(t, i, f->data[i]);
    return t;
}

/* Load file from $TN_FIXTURES into fx: 0 when loaded, 77 (skip) when
 * TN_FIXTURES names no directory, 1 when the file cannot be read (both
 * printed, naming test). */
static inline int fixture_open(fixture *fx, const char *file, const char *test)
{
    const char *dir = fixture_dir();
    char path[4096];
    if (!dir) {
        printf("%s: TN_FIXTURES is not set to a directory; the PyTorch parity part is skipped\n",
               test);
        return 77;
    }
    if (!fixture_path(path, sizeof path, dir, file) || fixture_load(fx, path)) {
        fprintf(stderr, "%s: %s\n", test, fx->error);
        return 1;
    }
    return 0;
}

#endif
