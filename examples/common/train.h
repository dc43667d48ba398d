/* examples/common/train.h - the training driver of the programs: one loop
 * owns what every training run does, and each program gives it hooks for
 * what is its own (the batch and its loss, the carried state, evaluation,
 * the checkpoint). Part of the helper library tn_examples; not libtensor's
 * API.
 *
 * A step: the tape reset and the gradients cleared; forward(ctx) records
 * the batch's loss; backward; the gradients averaged over the MPI ranks
 * (train_dist.h; nothing with one process); the global norm clipped to
 * clip (0: not clipped, but still computed: a non-finite norm stops the
 * run); the optimizer's step; stepped(ctx). A failure, or a loss or norm
 * that is not finite on any rank, stops the run before the parameters
 * change, with a message naming the step ("training diverged at step N",
 * "the last good checkpoint P is kept").
 *
 * After step s: evaluate when s is a multiple of eval_every and after the
 * last step (rank 0 only); save when s is a multiple of save_every before
 * the last step, and after the last step (collective: every rank calls
 * save). A run with no step to take (step == steps) evaluates and saves
 * the model as it is (train_loss NaN). Rank 0 prints the progress, a line
 * per evaluation ("step S train_loss L name value ..."), the final line
 * ("final step S train_loss L ... train_ms_per_step M") and writes the
 * logs:
 *   log       a row per evaluation: step,train_loss,<columns>,elapsed_s,
 *             train_s (train_loss: the mean step loss since the previous
 *             evaluation; elapsed_s: wall time; train_s: the time in
 *             training steps alone, without evaluation and saving);
 *             appended to when `append` (a resumed run) and it exists;
 *   loss_log  a row per step: step,loss (the batch's loss, %.9g), for
 *             comparisons with PyTorch step by step.
 * The final line's train_loss is the 0.95-smoothed loss of the progress
 * bar. */
#ifndef TN_EXAMPLES_TRAIN_H
#define TN_EXAMPLES_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include <tensor/tensor.h>

#include "cli.h"

/* The options --log and --loss-log (CSV paths into *logp, *loss_logp) of
 * the commands of the bit mask cmds: two entries of an ex_opt table. */
#define EX_TRAIN_LOG_OPTS(logp, loss_logp, curvep, cmds)                                   \
    {"--log",                                                                              \
     EX_STRING,                                                                            \
     (logp),                                                                               \
     "CSV",                                                                                \
     "a row per evaluation: step,train_loss,<the evaluation>,elapsed_s,train_s",           \
     .commands = (cmds)},                                                                  \
        {"--loss-log",                                                                     \
         EX_STRING,                                                                        \
         (loss_logp),                                                                      \
         "CSV",                                                                            \
         "a row per step: step,loss (to compare with PyTorch step by step)",               \
         .commands = (cmds)},                                                              \
    {                                                                                      \
        "--plot", EX_STRING, (curvep), "FILE.png",                                         \
            "the learning curve: train_loss and the evaluation against step (its rows in " \
            "FILE.png.csv; the PNG when gnuplot is installed)",                            \
            .commands = (cmds)                                                             \
    }

/* An evaluation column: its name ("val_loss") and its decimals. */
typedef struct ex_col {
    const char *name;
    int digits;
} ex_col;

enum { EX_TRAIN_MAX_COLS = 8 };

typedef struct ex_train {
    const char *prog;
    tn_tape *tp;
    tn_params *ps; /* the trained parameters (clipped) */
    tn_optim *opt;
    int64_t step;                   /* steps already done (a resumed run's), then the last done */
    int64_t steps;                  /* the run ends after this step */
    double clip;                    /* global gradient norm limit; 0: none */
    int64_t eval_every, save_every; /* 0: only after the last step */
    const char *log, *loss_log;     /* CSV paths or NULL */
    const char *curve;              /* --plot: the learning curve's PNG, or NULL */
    bool append;                    /* resumed: append to an existing log */
    const char *checkpoint;         /* named in the divergence message, or NULL */
    double per_step;                /* units a step ("tok", "pairs") for the rate */
    const char *unit;

    /* The hooks; ctx is passed to each. forward records step `step`'s loss
     * (a scalar) on the reset tape tp and returns it (NULL: failed, the
     * message in the tape's error or, for a failure of its own, in
     * tn_last_error()). The others may be NULL; they return 0, or -1
     * after printing why (the run stops, exit status 1). */
    void *ctx;
    tn_tensor *(*forward)(void *ctx, tn_tape *tp, int64_t step);
    int (*stepped)(void *ctx);
    int (*evaluate)(void *ctx, tn_tape *tp, double *values); /* values[n_cols] */
    int (*save)(void *ctx, tn_tape *tp, int64_t step);
    const ex_col *cols; /* evaluate's values */
    int n_cols;

    /* Results, read after ex_train_run. */
    double loss;                      /* the last step's loss (mean over the ranks) */
    double smooth;                    /* 0.95-smoothed */
    double values[EX_TRAIN_MAX_COLS]; /* the last evaluation's (NaN before one) */
    double seconds, train_seconds, eval_seconds;
} ex_train;

/* ---- a program's start ---- */

/* After the options: MPI when launched by mpirun (ex_dist_start), refused
 * with several ranks unless the command runs on several (several_ranks:
 * train), and the library's runtime on `threads` threads (0: its
 * default). Returns 0, or 1 (message printed; nothing to stop). */
int ex_start(const char *prog, int *argc, char ***argv, int64_t threads, bool several_ranks);
/* At the end of main (ex_dist_stop). */
void ex_stop(void);

/* ---- several ranks (train_dist.h) ---- */

/* This rank's rows [*r0, *r0 + *b) of a global batch of B. Refused (on
 * every rank, message from rank 0) when B does not split evenly over the
 * ranks or `data` (a size of what each rank read, e.g. its text's length)
 * differs between them. Returns 0 or -1. */
int ex_train_split(const char *prog, int64_t B, int64_t data, int64_t *r0, int64_t *b);

/* Collective: the ranks' part of a checkpoint's metadata, set in meta on
 * rank 0: "ranks" (their number) and every rank's tape generator (rank
 * 0's as "rng", rank r's as "rng.r"). Returns 0 or -1 on every rank. */
int ex_train_meta_ranks(tn_meta *meta, tn_tape *tp);

/* Resuming from the checkpoint `path` whose metadata is meta: refused
 * (message printed) when it was written by another number of ranks (a file
 * without "ranks" is of 1); otherwise this rank's tape generator is
 * restored from it. Returns 0 or -1. */
int ex_train_resume_ranks(const char *prog, const char *path, const tn_meta *meta, tn_tape *tp);

/* The same result on every rank: -1 when rc is -1 on any (a save hook
 * whose file rank 0 alone writes passes rank 0's result and 0 elsewhere). */
int ex_train_agree(int rc);

/* Seed the tape's generator (dropout masks) of a new run from the run's
 * seed: its own stream per MPI rank, apart from the streams the seed
 * gives the initial weights. */
void ex_train_seed_tape(tn_tape *tp, uint64_t seed);

/* Before a training run loads anything: each of its outputs that is given
 * (not NULL: --checkpoint, --log, --loss-log, --plot) can be written
 * (ex_check_output). Returns 0 or -1 (message printed). */
int ex_train_check_outputs(const char *prog, const char *checkpoint, const char *log,
                           const char *loss_log, const char *curve);

/* Run steps t->step + 1 .. t->steps as described above and print the final
 * line. The logs are opened first (check their paths with ex_check_output
 * before loading data). Returns
 * 0, or 1 when the run stopped (message printed; with several ranks every
 * rank returns 1). The caller still owns everything t points to. */
int ex_train_run(ex_train *t);

#endif
