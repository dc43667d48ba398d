/* examples/common/export.c - the programs' `export` command (export.h). */
#include "export.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

int ex_export_check(const char *prog, const char *checkpoint, const char *out)
{
    if (!checkpoint || !out) {
        fprintf(stderr, "%s export: --checkpoint PATH and --out PATH are required\n", prog);
        return 2;
    }
    return ex_check_output(prog, "--out", out) ? 2 : 0;
}

tn_status ex_export_meta(const tn_meta *meta, tn_meta *keep)
{
    static const char *const training[] = {"data_pos", "batch", "seq",     "lr",
                                           "ranks",    "rng",   "data_rng"};
    tn_status s = TN_OK;
    for (int i = 0; s == TN_OK && i < meta->n; i++) {
        const char *k = meta->keys[i];
        bool drop = strncmp(k, "rng.", 4) == 0;
        for (size_t j = 0; j < sizeof training / sizeof training[0]; j++)
            drop = drop || strcmp(k, training[j]) == 0;
        if (!drop)
            s = tn_meta_set(keep, k, meta->values[i]);
    }
    return s;
}

int ex_export_write(const char *prog, const char *checkpoint, const char *out, const tn_lm *lm,
                    tn_params *ps)
{
    tn_meta meta, keep;
    tn_meta_init(&meta);
    tn_meta_init(&keep);
    tn_params *sets[1] = {lm ? (tn_params *)&lm->ps : ps};
    tn_status s = tn_load_meta(checkpoint, &meta);
    if (s == TN_OK)
        s = ex_export_meta(&meta, &keep);
    if (s == TN_OK)
        s = lm ? tn_lm_save(out, lm, NULL, NULL, 0, &keep) : tn_save(out, sets, 1, &keep);
    if (s != TN_OK)
        fprintf(stderr, "%s export: %s\n", prog, tn_last_error());
    else
        printf("wrote %s: %d tensors, %" PRId64 " parameters\n", out, sets[0]->n,
               tn_params_numel(sets[0]));
    tn_meta_free(&keep);
    tn_meta_free(&meta);
    return s == TN_OK ? 0 : 1;
}
