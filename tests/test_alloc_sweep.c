/* tests/test_alloc_sweep.c - an allocation-failure sweep (issue 10, D3, D4,
 * D7): a small train step (embedding, LSTM, linear, cross-entropy,
 * backward, clipping, Adam), a save over a good checkpoint and a load, run
 * again and again with the N-th allocation of the library (jansson's
 * included: it allocates through the library's hooks) failing, for every N
 * until a run makes fewer than N allocations. Each time:
 *   - every failure reports TN_ERR_MEMORY (the tape's status, the returned
 *     status and tn_last_status) and says "out of memory"; nothing else;
 *   - a failed save leaves the previous checkpoint byte for byte as it was,
 *     with no temporary file left behind; a successful one loads back;
 *   - a failed load leaves the parameters untouched;
 *   - under ASan + UBSan: no report (no leak, overflow or use after free).
 * Before the fix jansson used malloc (failures never reached it; when they
 * did it wrote corrupt headers), a failure of the final directory-name
 * allocation replaced the file yet returned TN_ERR_MEMORY, and
 * tn_rnn_forward turned a failed tape into TN_ERR_STATE. */
#include "check.h"
#include "tensor/tensor.h"

#include <dirent.h>
#include <stdint.h>
#include <unistd.h>

static long n_alloc, fail_at; /* fail allocation number fail_at (1-based); 0: none */

static void *sweep_alloc(size_t n)
{
    if (++n_alloc == fail_at)
        return NULL;
    return malloc(n);
}

static char dir[64], path[128];

static int count_files(void)
{
    int k = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        k += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return k;
}

typedef struct model {
    tn_params ps;
    tn_embedding emb;
    tn_rnn rnn;
    tn_linear head;
} model;

static void model_build(model *m, uint64_t seed)
{
    tn_rng r;
    tn_rng_seed(&r, seed);
    tn_params_init(&m->ps);
    tn_embedding_init(&m->emb, &m->ps, "embed", 7, 4, -1, TN_F32, &r);
    tn_rnn_init(&m->rnn, &m->ps, "rnn", TN_CELL_LSTM, 4, 6, 1, false, 0.0, TN_F32, &r);
    tn_linear_init(&m->head, &m->ps, "head", 6, 7, true, TN_F32, &r);
}

/* A failure must be "out of memory", reported as such. */
static void check_oom(const char *where, tn_status st)
{
    if (st == TN_OK)
        return;
    if (st != TN_ERR_MEMORY || tn_last_status() != TN_ERR_MEMORY ||
        !strstr(tn_last_error(), "out of memory")) {
        fprintf(stderr, "fail_at %ld: %s: status %s, last %s: %s\n", fail_at, where,
                tn_status_name(st), tn_status_name(tn_last_status()), tn_last_error());
        CHECK(false);
    }
}

/* One scenario; returns true when the failure was injected (the run made
 * at least fail_at allocations). */
static bool scenario(model *a, tn_optim *opt, const unsigned char *good, size_t ngood)
{
    n_alloc = 0;
    tn_clear_error();
    /* train step */
    tn_tape *tp = tn_tape_new();
    if (!tp) {
        check_oom("tn_tape_new", tn_last_status());
    } else {
        tn_tensor *ids = tn_tape_tensor(tp, TN_I32, 2, (int64_t[]){2, 3});
        tn_tensor *tg = tn_tape_tensor(tp, TN_I32, 1, (int64_t[]){6});
        if (ids && tg)
            for (int i = 0; i < 6; i++) {
                ((int32_t *)ids->data)[i] = i % 7;
                ((int32_t *)tg->data)[i] = (i + 1) % 7;
            }
        tn_rnn_out out;
        tn_tensor *x = tn_embedding_forward(tp, &a->emb, ids);
        tn_status st = tn_rnn_forward(tp, &a->rnn, x, NULL, NULL, NULL, &out);
        check_oom("tn_rnn_forward", st);
        tn_tensor *lg = tn_linear_forward(tp, &a->head, out.output);
        tn_tensor *loss =
            tn_cross_entropy(tp, tn_reshape(tp, lg, 2, (int64_t[]){6, 7}), tg, -1, TN_REDUCE_MEAN);
        check_oom("forward (tape status)", tn_tape_status(tp));
        if (loss) {
            tn_params_zero_grad(&a->ps);
            st = tn_backward(tp, loss);
            check_oom("tn_backward", st);
            if (st == TN_OK) {
                tn_clip_grad_norm(&a->ps, 1.0);
                CHECK(tn_optim_step(opt) == TN_OK);
            }
        }
        tn_tape_free(tp);
    }
    /* save over the good checkpoint */
    tn_status st = tn_save(path, (tn_params *[]){&a->ps, (tn_params *)tn_optim_state(opt)}, 2,
                           NULL);
    check_oom("tn_save", st);
    size_t n;
    unsigned char *now = check_read_file(path, &n);
    if (st != TN_OK) {
        if (!(now && n == ngood && memcmp(now, good, n) == 0)) {
            fprintf(stderr, "fail_at %ld: failed save changed the checkpoint\n", fail_at);
            CHECK(false);
        }
    } else {
        /* load it back into a second model: equal, or untouched on failure */
        model b;
        long keep = fail_at;
        fail_at = 0;
        model_build(&b, 99);
        tn_optim *bo = tn_optim_adam(&b.ps, NULL);
        double before = tn_tensor_get(b.ps.items[0].t, 0);
        fail_at = keep;
        st = tn_load(path, (tn_params *[]){&b.ps, (tn_params *)tn_optim_state(bo)}, 2, NULL);
        check_oom("tn_load", st);
        double want = st == TN_OK ? tn_tensor_get(a->ps.items[0].t, 0) : before;
        CHECK(tn_tensor_get(b.ps.items[0].t, 0) == want); /* exact: bits are copied */
        tn_optim_free(bo);
        tn_params_free(&b.ps);
        FILE *f = fopen(path, "wb"); /* restore the good checkpoint for the next run */
        fwrite(good, 1, ngood, f);
        fclose(f);
    }
    free(now);
    if (count_files() != 1) {
        fprintf(stderr, "fail_at %ld: temporary files left behind\n", fail_at);
        CHECK(false);
    }
    return n_alloc >= fail_at;
}

int main(void)
{
    strcpy(dir, "/tmp/tn_test_sweep.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    tn_params none = {0};
    if (tn_save(path, (tn_params *[]){&none}, 1, NULL) != TN_OK &&
        strstr(tn_last_error(), "built without jansson")) {
        printf("test_alloc_sweep: %s: skipping\n", tn_last_error());
        rmdir(dir);
        return 77;
    }
    tn_runtime_init();
    tn_set_allocator(sweep_alloc, free); /* before any library object exists */
    model a;
    model_build(&a, 1);
    tn_optim *opt = tn_optim_adam(&a.ps, NULL);
    CHECK(tn_save(path, (tn_params *[]){&a.ps, (tn_params *)tn_optim_state(opt)}, 2, NULL) ==
          TN_OK);
    size_t ngood = 0;
    unsigned char *good = check_read_file(path, &ngood);
    long runs = 0;
    for (fail_at = 1; scenario(&a, opt, good, ngood); fail_at++)
        runs++;
    fail_at = 0;
    printf("test_alloc_sweep: %ld runs, each failing one allocation (of %ld per run)\n", runs,
           n_alloc);
    CHECK(runs > 100); /* the scenario really allocates: the sweep is not empty */
    free(good);
    tn_optim_free(opt);
    tn_params_free(&a.ps);
    unlink(path);
    rmdir(dir);
    tn_set_allocator(NULL, NULL);
    return check_report("test_alloc_sweep");
}
