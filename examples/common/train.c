/* examples/common/train.c - the training driver (train.h). */
#include "train.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "plot.h"
#include "train_dist.h"

/* Open a log (rank 0): appended to when t->append and it exists, else
 * created with its header. NULL path: *f stays NULL. Returns 0 or -1. */
static int log_open(const ex_train *t, const char *opt, const char *path, bool per_eval, FILE **f)
{
    *f = NULL;
    if (!path)
        return 0;
    bool fresh = !(t->append && access(path, F_OK) == 0);
    if (!(*f = fopen(path, fresh ? "w" : "a"))) {
        fprintf(stderr, "%s: %s %s: %s\n", t->prog, opt, path, strerror(errno));
        return -1;
    }
    if (fresh && per_eval) {
        fprintf(*f, "step,train_loss");
        for (int k = 0; k < t->n_cols; k++)
            fprintf(*f, ",%s", t->cols[k].name);
        fprintf(*f, ",elapsed_s,train_s\n");
    } else if (fresh) {
        fprintf(*f, "step,loss\n");
    }
    return 0;
}

/* One optimizer step: forward, backward, all-reduce, clip, step. *loss
 * gets the batch's loss (the ranks' mean). Returns 0, or -1 after the
 * message (every rank returns -1 together). */
static int train_step(ex_train *t, bool lead, double *loss)
{
    tn_tape_reset(t->tp);
    tn_optim_zero_grad(t->opt);
    tn_tensor *l = t->forward(t->ctx, t->tp, t->step);
    tn_status st = l ? tn_backward(t->tp, l) : tn_tape_status(t->tp);
    if (!l && st == TN_OK) /* failed before recording: its message is the last error */
        st = tn_last_status() != TN_OK ? tn_last_status() : TN_ERR_STATE;
    if (st == TN_OK)
        st = ex_dist_allreduce(NULL); /* mean of the ranks' gradients */
    if (ex_dist_agree(st) != TN_OK) {
        if (lead || st != TN_OK)
            fprintf(stderr, "\n%s: step %" PRId64 ": %s\n", t->prog, t->step + 1, tn_last_error());
        return -1;
    }
    /* Divergence stops the run before it reaches the parameters: a
     * non-finite loss (on any rank: their mean is then NaN) or gradient
     * norm (clipping computes it anyway; without clip, with an infinite
     * limit). The averaged gradients are the same on every rank, so
     * clipping and the step agree without a word. */
    *loss = ex_dist_mean(tn_tensor_get(l, 0));
    if (!isfinite(*loss) ||
        tn_clip_grad_norm(t->ps, t->clip > 0 ? t->clip : INFINITY, NULL) != TN_OK ||
        tn_optim_step(t->opt) != TN_OK) {
        char why[64];
        snprintf(why, sizeof why, "the loss is %g", *loss);
        if (lead)
            fprintf(stderr, "\n%s: training diverged at step %" PRId64 ": %s; stopping%s%s%s\n",
                    t->prog, t->step + 1, isfinite(*loss) ? tn_last_error() : why,
                    t->checkpoint ? "; the last good checkpoint " : "",
                    t->checkpoint ? t->checkpoint : "", t->checkpoint ? " is kept" : "");
        return -1;
    }
    return 0;
}

/* The row of an evaluation in a per-evaluation log (NULL: none). */
static void log_row(const ex_train *t, FILE *f, double since, double t0)
{
    if (!f)
        return;
    fprintf(f, "%" PRId64 ",%.6f", t->step, since);
    for (int k = 0; k < t->n_cols; k++)
        fprintf(f, ",%.6f", t->values[k]);
    fprintf(f, ",%.3f,%.3f\n", ex_seconds() - t0, t->train_seconds);
    fflush(f);
}

/* Evaluate (rank 0), print the line and log the row (--log and the
 * learning curve's rows). Returns 0 or -1. */
static int train_evaluate(ex_train *t, bool tty, FILE *log, FILE *curve, double since, double t0)
{
    double e0 = ex_seconds();
    if (t->evaluate(t->ctx, t->tp, t->values))
        return -1;
    t->eval_seconds += ex_seconds() - e0;
    fprintf(stderr, "%sstep %" PRId64 " train_loss %.4f", tty ? "\n" : "", t->step, since);
    for (int k = 0; k < t->n_cols; k++)
        fprintf(stderr, " %s %.*f", t->cols[k].name, t->cols[k].digits, t->values[k]);
    fprintf(stderr, "\n");
    log_row(t, log, since, t0);
    log_row(t, curve, since, t0);
    return 0;
}

/* The learning curve (--plot): its rows went to png.csv; draw them. */
static int curve_draw(const ex_train *t, const char *csv)
{
    char title[96];
    snprintf(title, sizeof title, "%s: learning curve", t->prog);
    return ex_plot_lines(t->prog, t->curve, csv, 1 + t->n_cols, title, "step", "", false, 900,
                         500) == PLOT_ERROR
               ? -1
               : 0;
}

int ex_start(const char *prog, int *argc, char ***argv, int64_t threads, bool several_ranks)
{
    if (ex_dist_start(argc, argv))
        return 1;
    if (ex_dist_size() > 1 && !several_ranks) {
        if (ex_dist_rank() == 0)
            fprintf(stderr, "%s: only train runs on several ranks\n", prog);
        ex_dist_stop();
        return 1;
    }
    if (ex_runtime(prog, threads)) {
        ex_dist_stop();
        return 1;
    }
    return 0;
}

void ex_stop(void) { ex_dist_stop(); }

int ex_train_split(const char *prog, int64_t B, int64_t data, int64_t *r0, int64_t *b)
{
    int N = ex_dist_size();
    bool same = ex_dist_same(data);
    if (B % N != 0 || !same) {
        if (ex_dist_rank() == 0) {
            if (B % N)
                fprintf(stderr, "%s: --batch %" PRId64 " does not split over %d ranks\n", prog, B,
                        N);
            else
                fprintf(stderr, "%s: the ranks read different data (%" PRId64 ")\n", prog, data);
        }
        return -1;
    }
    *b = B / N;
    *r0 = ex_dist_rank() * *b;
    return 0;
}

int ex_train_meta_ranks(tn_meta *meta, tn_tape *tp)
{
    int N = ex_dist_size(), rank = ex_dist_rank();
    tn_rng *rngs = rank == 0 ? malloc(sizeof *rngs * (size_t)N) : NULL;
    int rc = rank == 0 && !rngs ? -1 : 0;
    if (ex_dist_gather(tn_tape_rng(tp), rngs, (int64_t)sizeof(tn_rng)))
        rc = -1;
    if (rank == 0 && rc == 0 &&
        (tn_meta_set_int(meta, "ranks", N) || tn_meta_set_rng(meta, "rng", &rngs[0])))
        rc = -1;
    for (int r = 1; rank == 0 && rc == 0 && r < N; r++) {
        char key[32];
        snprintf(key, sizeof key, "rng.%d", r);
        if (tn_meta_set_rng(meta, key, &rngs[r]))
            rc = -1;
    }
    free(rngs);
    return ex_dist_agree(rc ? TN_ERR_MEMORY : TN_OK) == TN_OK ? 0 : -1;
}

int ex_train_resume_ranks(const char *prog, const char *path, const tn_meta *meta, tn_tape *tp)
{
    int N = ex_dist_size(), rank = ex_dist_rank();
    int64_t ranks = 1;
    if (tn_meta_get(meta, "ranks") && tn_meta_get_int(meta, "ranks", &ranks))
        ranks = -1;
    if (ranks != N) {
        fprintf(stderr,
                "%s: %s was written by a run of %" PRId64 " ranks; resume it with as "
                "many (this run has %d)\n",
                prog, path, ranks, N);
        return -1;
    }
    char key[32];
    snprintf(key, sizeof key, rank ? "rng.%d" : "rng", rank);
    if (tn_meta_get_rng(meta, key, tn_tape_rng(tp))) {
        fprintf(stderr, "%s: %s lacks %s (the generator of rank %d)\n", prog, path, key, rank);
        return -1;
    }
    return 0;
}

int ex_train_agree(int rc) { return ex_dist_agree(rc ? TN_ERR_IO : TN_OK) == TN_OK ? 0 : -1; }

void ex_train_seed_tape(tn_tape *tp, uint64_t seed)
{
    tn_rng_seed(tn_tape_rng(tp), (seed ^ 0x9e3779b97f4a7c15ULL) + (uint64_t)ex_dist_rank());
}

int ex_train_run(ex_train *t)
{
    bool lead = ex_dist_rank() == 0, tty = lead && isatty(STDERR_FILENO);
    FILE *log = NULL, *loss_log = NULL, *curve = NULL;
    char curve_csv[4096] = "";
    if (t->curve && t->evaluate)
        snprintf(curve_csv, sizeof curve_csv, "%s.csv", t->curve);
    int rc = 0;
    if (lead && (log_open(t, "--log", t->log, true, &log) ||
                 log_open(t, "--loss-log", t->loss_log, false, &loss_log) ||
                 log_open(t, "--plot", *curve_csv ? curve_csv : NULL, true, &curve)))
        rc = -1;
    if (ex_dist_watch(t->tp)) /* all-reduces overlap backward */
        rc = -1;
    if (ex_dist_agree(rc ? TN_ERR_IO : TN_OK) != TN_OK) {
        if (log)
            fclose(log);
        return 1;
    }
    for (int k = 0; k < EX_TRAIN_MAX_COLS; k++)
        t->values[k] = NAN;
    t->loss = t->smooth = NAN;
    t->train_seconds = t->eval_seconds = 0;
    int64_t start = t->step, n_since = 0;
    double t0 = ex_seconds(), since = 0;
    if (t->evaluate && t->step == t->steps) { /* no step to take: the model as it is */
        int e = lead ? train_evaluate(t, false, log, curve, NAN, t0) : 0;
        if (ex_dist_agree(e ? TN_ERR_IO : TN_OK) != TN_OK)
            rc = -1;
    }
    while (t->step < t->steps) {
        double ts = ex_seconds(), l;
        if (train_step(t, lead, &l) || (t->stepped && t->stepped(t->ctx))) {
            rc = -1;
            break;
        }
        t->step++;
        t->train_seconds += ex_seconds() - ts;
        t->loss = l;
        t->smooth = isnan(t->smooth) ? l : 0.95 * t->smooth + 0.05 * l;
        since += l, n_since++;
        if (loss_log)
            fprintf(loss_log, "%" PRId64 ",%.9g\n", t->step, l);
        if (lead)
            ex_progress(tty, t->step, t->steps, start, t0, t->smooth, t->per_step, t->unit);
        bool last = t->step == t->steps;
        if (t->evaluate && ((t->eval_every && t->step % t->eval_every == 0) || last)) {
            int e = lead ? train_evaluate(t, tty, log, curve, since / (double)n_since, t0) : 0;
            if (ex_dist_agree(e ? TN_ERR_IO : TN_OK) != TN_OK) {
                rc = -1;
                break;
            }
            since = 0, n_since = 0;
        }
        bool save_now = last || (t->save_every && t->step % t->save_every == 0);
        if (t->save && save_now && t->save(t->ctx, t->tp, t->step)) {
            rc = -1;
            break;
        }
    }
    if (tty)
        fprintf(stderr, "\n");
    t->seconds = ex_seconds() - t0;
    if (rc == 0 && t->steps == t->step && t->step == start && t->save &&
        t->save(t->ctx, t->tp, t->step)) /* no step to take: the model as it is */
        rc = -1;
    if (rc == 0 && lead) {
        printf("final step %" PRId64 " train_loss %.4f (last batch %.4f)", t->step, t->smooth,
               t->loss);
        for (int k = 0; t->evaluate && k < t->n_cols; k++)
            printf(" %s %.*f", t->cols[k].name, t->cols[k].digits, t->values[k]);
        int64_t done = t->step - start;
        printf(" in %.1fs (evaluation %.1fs) train_ms_per_step %.1f\n", t->seconds, t->eval_seconds,
               done ? 1e3 * t->train_seconds / (double)done : 0.0);
    }
    if (log)
        fclose(log);
    if (loss_log)
        fclose(loss_log);
    if (curve) {
        fclose(curve);
        if (rc == 0 && curve_draw(t, curve_csv))
            rc = -1;
    }
    return rc ? 1 : 0;
}

int ex_train_check_outputs(const char *prog, const char *checkpoint, const char *log,
                           const char *loss_log, const char *curve)
{
    const char *opt[4] = {"--checkpoint", "--log", "--loss-log", "--plot"};
    const char *path[4] = {checkpoint, log, loss_log, curve};
    for (int i = 0; i < 4; i++)
        if (path[i] && ex_check_output(prog, opt[i], path[i]))
            return -1;
    return 0;
}
