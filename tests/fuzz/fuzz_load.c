/* tests/fuzz/fuzz_load.c - libFuzzer target for the checkpoint loaders
 * (issue 10): every input is written to a scratch file and read with
 * tn_load_meta, tn_load_list and tn_load into a fixed parameter set
 * ("lin.weight" F32 [2, 3], "lin.bias" F64 [3]: the tensors of
 * tests/fixtures/io_python.safetensors, so inputs close to it reach the
 * data decoding); every metadata value also goes through tn_meta_get_int
 * and tn_meta_get_rng, the parsers programs apply to it. Built with ASan + UBSan; any report, leak or crash is a
 * finding. The corpus starts from tests/fuzz/corpus (valid and broken
 * checkpoints) and the crafted checkpoints of tests/fixtures/crafted. */
#include "tensor/tensor.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* libFuzzer's entry points, which it calls (it has no header declaring
 * them). */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];
static tn_params ps;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    snprintf(path, sizeof path, "/tmp/tn_fuzz_load.%ld", (long)getpid());
    tn_params_init(&ps);
    tn_params_new(&ps, "lin", "weight", TN_F32, 2, (int64_t[]){2, 3});
    tn_params_new(&ps, "lin", "bias", TN_F64, 1, (int64_t[]){3});
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    tn_meta m = {0};
    if (tn_load_meta(path, &m) == TN_OK) /* and the parsers programs apply to it */
        for (int i = 0; i < m.n; i++) {
            int64_t v;
            tn_rng r;
            tn_meta_get_int(&m, m.keys[i], &v);
            tn_meta_get_rng(&m, m.keys[i], &r);
        }
    tn_meta_free(&m);
    tn_ckpt_entry *e = NULL;
    int n = 0;
    if (tn_load_list(path, &e, &n) == TN_OK)
        for (int i = 0; i < n; i++) /* shapes as validated: sizes >= 0, ndim 0..4 */
            if (e[i].ndim < 0 || e[i].ndim > TN_MAX_DIMS || e[i].shape[0] < 0)
                abort();
    tn_ckpt_entries_free(e, n);
    tn_load(path, (tn_params *[]){&ps}, 1, &m);
    tn_meta_free(&m);
    unlink(path);
    return 0;
}
