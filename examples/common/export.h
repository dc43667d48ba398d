/* examples/common/export.h - the programs' `export` command: a checkpoint's
 * model alone (no optimizer state, no carried state, no training run's
 * position) under the parameter names of the program's PyTorch module, for
 * load_state_dict(strict=True) (tools/torch_models.py). Built into the
 * helper library tn_examples; not part of libtensor's API.
 */
#ifndef TN_EXAMPLES_EXPORT_H
#define TN_EXAMPLES_EXPORT_H

#include <tensor/tensor.h>

/* Check export's options before any work: checkpoint and out given, out
 * writable (ex_check_output). Returns 0, or 2 (message printed: a usage
 * error). */
int ex_export_check(const char *prog, const char *checkpoint, const char *out);

/* Copy meta into keep (initialised by the caller) without the keys of a
 * training run's position: data_pos, batch, seq, lr, ranks, rng, rng.<r>,
 * data_rng. What is left describes the model (format, sizes,
 * vocabularies, and "step", the steps it was trained), so the program
 * (and the import side) can read the file back. Returns TN_OK or
 * TN_ERR_MEMORY. */
tn_status ex_export_meta(const tn_meta *meta, tn_meta *keep);

/* Write to out the model loaded from checkpoint: lm (a language model,
 * through tn_lm_save, which adds the lm.* keys) or else the parameters ps
 * (tn_save), with checkpoint's metadata less the training keys
 * (ex_export_meta), and print "wrote OUT: N tensors, P parameters".
 * Returns 0, or 1 (message printed, prefixed prog). */
int ex_export_write(const char *prog, const char *checkpoint, const char *out, const tn_lm *lm,
                    tn_params *ps);

#endif
