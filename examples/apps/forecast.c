/* examples/apps/forecast.c - time-series prediction with a recurrent regressor
 * (the lecture notes' stock prices and sensor data): a window of the last W
 * values (and optional calendar features) -> tn_rnn (lstm|gru) -> Linear ->
 * the next value, trained with tn_mse; a forecast of the next --horizon
 * values feeds each prediction back as the next input (autoregressive
 * rollout), or, with --mode direct, the head is Linear(H, horizon) and
 * gives all of them at once.
 *
 *   forecast train   [--data FILE.csv [--column K]] [--length N] [--cell gru|lstm]
 *                    [--mode ar|direct] [--hidden H] [--layers L] [--window W]
 *                    [--horizon K] [--periods P1,P2] [--batch B] [--steps N] [--lr X]
 *                    [--clip X] [--val-fraction F] [--ar P] [--seed S] [--threads N]
 *                    [--checkpoint PATH] [--eval-every N] [--log CSV] [--loss-log CSV]
 *   forecast eval    --checkpoint PATH [--data FILE.csv] [--ar P] [--plot FILE.png]
 *   forecast predict --checkpoint PATH [--data FILE.csv] [--horizon K] [--ar P]
 *
 * Data: without --data a generated series of --length values, deterministic
 * from --seed: two seasonal sines (periods 24 and 97), a slow linear trend
 * and Gaussian noise. --data reads one number a line, or column K of
 * comma- (or tab-) separated lines; a first line that is not a number is a
 * header. The last --val-fraction of the series is held out; the model
 * sees values normalised by the mean and standard deviation of the
 * training part only (saved in the checkpoint). A held-out forecast origin
 * o predicts values o..o+K-1 from the values before o (the window may
 * reach back into the training part); every origin whose K targets are
 * all held out is scored.
 *
 * The rollout runs the RNN over the window once, then one step per
 * forecast value, each step's input the previous prediction and the state
 * carried on (so the context grows by one value a step, as the RNN reads
 * a series). Training (mode ar) is teacher-forced: the head reads every
 * step of the window and predicts the value after it.
 *
 * Baselines on the same origins: the last value (naive), and a linear
 * autoregressive model AR(p), x_t = c + a_1 x_{t-1} + ... + a_p x_{t-p},
 * fitted by least squares on the training part (normal equations solved in
 * double by Cholesky) and rolled out the same way.
 */
#define _POSIX_C_SOURCE 200809L
#include <tensor/tensor.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "export.h"
#include "plot.h"
#include "train.h"

#define PROG            "forecast"
#define SERIES_SEED_MIX 0x2545f4914f6cdd1dULL
#define DATA_SEED_MIX   0x5851f42d4c957f2dULL
enum {
    MAX_PERIODS = 4,
    EVAL_BATCH = 256,
    MAX_WINDOW = 4096,
    MAX_HORIZON = 1024,
    MAX_AR = 256,
    MAX_HIDDEN = 8192,
    MAX_LENGTH = 100000000,
};

/* ---- options ---- */

typedef struct opts {
    const char *data, *cell, *mode, *periods, *checkpoint, *out, *plot, *log, *loss_log, *curve;
    int64_t column, length, hidden, layers, window, horizon, batch, steps, threads, eval_every, ar,
        plot_length;
    double lr, clip, val_fraction;
    uint64_t seed;
} opts;

enum { TRAIN = 1, EVAL = 2, PREDICT = 4, EXPORT = 8 };

static int parse_opts(int argc, char **argv, opts *o, int *command)
{
    *o = (opts){.cell = "gru",
                .mode = "ar",
                .column = 1,
                .length = 3000,
                .hidden = 32,
                .layers = 1,
                .window = 48,
                .horizon = 0,
                .batch = 32,
                .steps = 1000,
                .eval_every = 250,
                .ar = 16,
                .plot_length = 0,
                .lr = 5e-3,
                .clip = 1.0,
                .val_fraction = 0.2,
                .seed = 1};
    const ex_opt table[] = {
        {"--out", EX_STRING, &o->out, "FILE", "where to write the exported model",
         .commands = EXPORT},
        {"--data", EX_STRING, &o->data, "FILE.csv",
         "the series: one number a line, or column --column of comma-separated lines",
         .def = "train: a generated series; else the checkpoint's"},
        {"--column", EX_INT, &o->column, "K", "the column of --data (1: the first)", .imin = 1,
         .imax = 1000000},
        {"--length", EX_INT, &o->length, "N", "values of the generated series", .imin = 100,
         .imax = MAX_LENGTH, .commands = TRAIN},
        {"--cell", EX_CHOICE, &o->cell, "CELL", "recurrent cell", .choices = "gru|lstm",
         .commands = TRAIN},
        {"--mode", EX_CHOICE, &o->mode, "MODE",
         "ar = predict the next value and roll out; direct = Linear(H, horizon)",
         .choices = "ar|direct", .commands = TRAIN},
        {"--hidden", EX_INT, &o->hidden, "H", "hidden units", .imin = 1, .imax = MAX_HIDDEN,
         .commands = TRAIN},
        {"--layers", EX_INT, &o->layers, "L", "recurrent layers", .imin = 1,
         .imax = TN_RNN_MAX_LAYERS, .commands = TRAIN},
        {"--window", EX_INT, &o->window, "W", "past values the model reads", .imin = 1,
         .imax = MAX_WINDOW, .commands = TRAIN},
        {"--horizon", EX_INT, &o->horizon, "K", "values forecast from each origin", .imin = 1,
         .imax = MAX_HORIZON, .def = "train: 12; predict: the checkpoint's (mode ar: any)",
         .commands = TRAIN | PREDICT},
        {"--periods", EX_STRING, &o->periods, "P1,P2",
         "extra inputs sin and cos of 2 pi t / P for each period (at most 4; known ahead, so "
         "the rollout has them)",
         .def = "none", .commands = TRAIN},
        {"--batch", EX_INT, &o->batch, "B", "windows per step", .imin = 1, .imax = 65536,
         .commands = TRAIN},
        {"--steps", EX_INT, &o->steps, "N", "training steps", .imin = 0, .imax = EX_STEPS_MAX,
         .commands = TRAIN},
        {"--lr", EX_REAL, &o->lr, "X", "Adam learning rate", .dmin = 0, .dmin_open = true,
         .dmax = 10, .commands = TRAIN},
        {"--clip", EX_REAL, &o->clip, "X", "clip the global gradient norm to X (0: off)", .dmin = 0,
         .dmax = 1e6, .commands = TRAIN},
        {"--val-fraction", EX_REAL, &o->val_fraction, "F",
         "the last fraction F of the series is held out (saved in the checkpoint)", .dmin = 0.01,
         .dmax = 0.9, .commands = TRAIN},
        {"--ar", EX_INT, &o->ar, "P", "order of the AR(P) baseline", .imin = 1, .imax = MAX_AR},
        {"--seed", EX_UINT64, &o->seed, "S",
         "random seed (the generated series, the weights, the batches)", .commands = TRAIN},
        {"--threads", EX_INT, &o->threads, "N", "threads for OpenMP loops and BLIS", .imin = 1,
         .imax = 1024, .def = EX_THREADS_DEFAULT},
        {"--checkpoint", EX_STRING, &o->checkpoint, "PATH",
         "safetensors checkpoint to write (train) or read", .def = "train: none; else required"},
        {"--eval-every", EX_INT, &o->eval_every, "N",
         "held-out MSE every N steps and at the end (0: only at the end)", .imin = 0,
         .imax = EX_STEPS_MAX, .commands = TRAIN},
        EX_TRAIN_LOG_OPTS(&o->log, &o->loss_log, &o->curve, TRAIN),
        {"--plot", EX_STRING, &o->plot, "FILE.png",
         "draw forecasts from successive origins against the truth, with the baselines",
         .commands = EVAL},
        {"--plot-length", EX_INT, &o->plot_length, "N",
         "values of the held-out part the plot covers", .imin = 1, .imax = 100000,
         .def = "8 horizons", .commands = EVAL},
    };
    static const char *const commands[] = {"train", "eval", "predict", "export", NULL};
    static const char *const command_help[] = {
        "train a forecaster (and write --checkpoint)",
        "MSE and MAE per forecast step on the held-out part: the RNN, last value, AR(P)",
        "forecast the values after the end of the series",
        "write --checkpoint's model alone to --out, as the PyTorch module's state_dict "
        "(tools/torch_models.py)",
    };
    const ex_spec spec = {
        .prog = PROG,
        .summary = "time-series forecasting with an RNN regressor (window -> tn_rnn -> Linear, "
                   "MSE), against last-value and AR(P) baselines",
        .commands = commands,
        .command_help = command_help,
        .opts = table,
        .n_opts = (int)(sizeof table / sizeof table[0]),
        .notes = "The generated series (no --data): sin(2 pi t/24) + 0.6 sin(2 pi t/97 + 1)\n"
                 "+ 0.0003 t + N(0, 0.15^2), t = 0..N-1. The model reads values normalised\n"
                 "by the training part's mean and standard deviation; errors are reported\n"
                 "in the series' own units. eval and predict read the checkpoint's series\n"
                 "(the generated one again, or its --data file) unless --data is given.\n",
    };
    return ex_parse(&spec, argc, argv, command);
}

/* "24,168" into p[0..*n): positive finite numbers, at most MAX_PERIODS.
 * Returns 0, or -1 with the reason in why. */
static int parse_periods(const char *s, double *p, int *n, const char **why)
{
    *n = 0;
    *why = "a comma-separated list of positive numbers";
    if (!s || !*s)
        return 0;
    for (const char *at = s;;) {
        char *end;
        errno = 0;
        double v = strtod(at, &end);
        if (end == at || errno || !isfinite(v) || v <= 0)
            return -1;
        if (*n == MAX_PERIODS) {
            *why = "at most 4 periods";
            return -1;
        }
        p[(*n)++] = v;
        if (*end == '\0')
            return 0;
        if (*end != ',')
            return -1;
        at = end + 1;
    }
}

/* ---- the series ---- */

typedef struct series {
    double *v;
    int64_t n;
} series;

static int series_generate(series *s, int64_t n, uint64_t seed)
{
    s->n = n;
    s->v = malloc(sizeof *s->v * (size_t)n);
    if (!s->v)
        return -1;
    tn_rng r;
    tn_rng_seed(&r, seed ^ SERIES_SEED_MIX);
    const double pi = 3.14159265358979323846;
    for (int64_t t = 0; t < n; t++)
        s->v[t] = sin(2 * pi * (double)t / 24) + 0.6 * sin(2 * pi * (double)t / 97 + 1) +
                  0.0003 * (double)t + 0.15 * tn_rng_normal(&r);
    return 0;
}

/* Field `column` (1-based) of the line [p, e) separated by ',' or tab: its
 * bounds in *fs, *fe; -1 when the line has fewer fields. */
static int field_of(const char *p, const char *e, int64_t column, const char **fs, const char **fe)
{
    for (int64_t c = 1;; c++) {
        const char *q = p;
        while (q < e && *q != ',' && *q != '\t')
            q++;
        if (c == column) {
            *fs = p, *fe = q;
            return 0;
        }
        if (q == e)
            return -1;
        p = q + 1;
    }
}

/* The numbers of column `column` of the file `path`. Empty lines are
 * skipped; a first line that is not a number is a header. Returns 0 or -1
 * (message printed naming the line). */
static int series_read(series *s, const char *path, int64_t column)
{
    unsigned char *buf;
    size_t n;
    memset(s, 0, sizeof *s);
    if (ex_read_file(PROG, "--data", path, &buf, &n))
        return -1;
    int64_t cap = 0, lineno = 0;
    int rc = 0;
    char tmp[128];
    for (size_t at = 0; at < n && rc == 0;) {
        const char *p = (const char *)buf + at, *e = memchr(p, '\n', n - at);
        if (!e)
            e = (const char *)buf + n;
        at = (size_t)(e - (const char *)buf) + 1;
        lineno++;
        const char *le = e > p && e[-1] == '\r' ? e - 1 : e, *fs, *fe;
        if (le == p)
            continue;
        if (field_of(p, le, column, &fs, &fe)) {
            fprintf(stderr, PROG ": --data %s: line %" PRId64 " has no column %" PRId64 "\n", path,
                    lineno, column);
            rc = -1;
            break;
        }
        while (fs < fe && (*fs == ' ' || *fs == '"'))
            fs++;
        while (fe > fs && (fe[-1] == ' ' || fe[-1] == '"'))
            fe--;
        size_t l = (size_t)(fe - fs);
        char *end = tmp;
        double v = NAN;
        if (l > 0 && l < sizeof tmp && !memchr(fs, '\0', l)) {
            memcpy(tmp, fs, l);
            tmp[l] = '\0';
            errno = 0;
            v = strtod(tmp, &end);
        }
        if (l == 0 || l >= sizeof tmp || *end != '\0' || errno == ERANGE || !isfinite(v)) {
            if (s->n == 0 && lineno == 1)
                continue; /* a header */
            fprintf(stderr,
                    PROG ": --data %s: line %" PRId64 ", column %" PRId64 ": '%.*s' is "
                         "not a finite number\n",
                    path, lineno, column, (int)(l < 40 ? l : 40), fs);
            rc = -1;
            break;
        }
        if (s->n == cap) {
            cap = cap ? 2 * cap : 1024;
            double *nv = realloc(s->v, sizeof *nv * (size_t)cap);
            if (!nv) {
                fprintf(stderr, PROG ": out of memory\n");
                rc = -1;
                break;
            }
            s->v = nv;
        }
        if (s->n == MAX_LENGTH) {
            fprintf(stderr, PROG ": --data %s: more than %d values\n", path, MAX_LENGTH);
            rc = -1;
            break;
        }
        s->v[s->n++] = v;
    }
    free(buf);
    if (rc) {
        free(s->v);
        memset(s, 0, sizeof *s);
    }
    return rc;
}

/* ---- the model ---- */

typedef struct model {
    tn_params ps;
    tn_rnn rnn;
    tn_linear head;
    const char *cell;
    bool direct;
    int64_t hidden, layers, window, horizon;
    int nper;
    double period[MAX_PERIODS];
    double mean, std; /* the training part's */
    /* where its series came from: a file (data) or generated (seed, length) */
    char *data;
    int64_t column, length;
    uint64_t seed;
    double val_fraction;
} model;

static int64_t model_inputs(const model *m) { return 1 + 2 * m->nper; }

static void model_free(model *m)
{
    tn_params_free(&m->ps);
    free(m->data);
    memset(m, 0, sizeof *m);
}

static int model_build(model *m, uint64_t seed)
{
    tn_rng r;
    tn_rng_seed(&r, seed);
    tn_params_init(&m->ps);
    if (tn_rnn_init(&m->rnn, &m->ps, "rnn", ex_cell(m->cell), model_inputs(m), m->hidden,
                    (int)m->layers, false, 0.0, TN_F32, &r) ||
        tn_linear_init(&m->head, &m->ps, "head", m->hidden, m->direct ? m->horizon : 1, true,
                       TN_F32, &r)) {
        fprintf(stderr, PROG ": %s\n", tn_last_error());
        return -1;
    }
    return 0;
}

/* The inputs of step t (absolute index in the series) whose value is z
 * (normalised): z, then sin and cos of 2 pi t / P per period. */
static void fill_input(const model *m, float *row, double z, int64_t t)
{
    const double pi = 3.14159265358979323846;
    row[0] = (float)z;
    for (int k = 0; k < m->nper; k++) {
        double a = 2 * pi * fmod((double)t, m->period[k]) / m->period[k];
        row[1 + 2 * k] = (float)sin(a);
        row[2 + 2 * k] = (float)cos(a);
    }
}

/* x [B, W, F] of the windows ending before origins org[0..B) of z. */
static tn_tensor *window_batch(tn_tape *tp, const model *m, const double *z, const int64_t *org,
                               int64_t B)
{
    int64_t W = m->window, F = model_inputs(m);
    tn_tensor *x = tn_tape_tensor(tp, TN_F32, 3, (int64_t[]){B, W, F});
    if (!x)
        return NULL;
    float *p = x->data;
    for (int64_t b = 0; b < B; b++)
        for (int64_t k = 0; k < W; k++) {
            int64_t t = org[b] - W + k;
            fill_input(m, p + (b * W + k) * F, z[t], t);
        }
    return x;
}

/* The last layer's state of out, [B, H]. */
static tn_tensor *last_state(tn_tape *tp, const model *m, const tn_rnn_out *out, int64_t B)
{
    tn_tensor *h = tn_narrow(tp, out->h_n, 0, m->layers - 1, 1);
    return tn_reshape(tp, h, 2, (int64_t[]){B, m->hidden});
}

/* Forecasts (normalised) of K values from each origin org[0..n) of z into
 * out[i * K + k]. mode ar rolls out (any K); direct needs K == horizon.
 * Returns 0, or -1 (message printed, starting with `what`) on an error or
 * a prediction that is not finite. */
static int forecast_rnn(tn_tape *tp, const model *m, const double *z, const int64_t *org, int64_t n,
                        int64_t K, double *out, const char *what)
{
    bool train = tn_tape_training(tp), grad = tn_tape_set_grad(tp, false);
    tn_tape_set_training(tp, false);
    int64_t F = model_inputs(m);
    double *y = malloc(sizeof *y * (size_t)EVAL_BATCH * (size_t)(m->direct ? m->horizon : 1));
    int rc = y ? 0 : -1;
    if (!y)
        fprintf(stderr, PROG ": out of memory\n");
    for (int64_t i0 = 0; rc == 0 && i0 < n; i0 += EVAL_BATCH) {
        int64_t B = n - i0 < EVAL_BATCH ? n - i0 : EVAL_BATCH;
        tn_tape_reset(tp);
        tn_rnn_out o;
        tn_tensor *x = window_batch(tp, m, z, org + i0, B), *p = NULL;
        if (x && tn_rnn_forward(tp, &m->rnn, x, NULL, NULL, NULL, &o) == TN_OK)
            p = tn_linear_forward(tp, &m->head, last_state(tp, m, &o, B));
        for (int64_t k = 0; p; k++) {
            tn_tensor_to_double(p, y);
            int64_t got = m->direct ? m->horizon : 1;
            for (int64_t b = 0; b < B; b++)
                for (int64_t j = 0; j < got; j++) {
                    if (!isfinite(y[b * got + j])) {
                        fprintf(stderr,
                                PROG ": %s: the forecast from origin %" PRId64 " is %g: "
                                     "the model's output is not finite\n",
                                what, org[i0 + b], y[b * got + j]);
                        rc = -1;
                        goto next;
                    }
                    out[(i0 + b) * K + k + j] = y[b * got + j];
                }
            if (m->direct || k + 1 == K)
                goto next;
            /* the next step: the prediction as input, the state carried on */
            tn_tensor *x1 = tn_tape_tensor(tp, TN_F32, 3, (int64_t[]){B, 1, F});
            p = NULL;
            if (!x1)
                break;
            for (int64_t b = 0; b < B; b++)
                fill_input(m, (float *)x1->data + b * F, y[b], org[i0 + b] + k);
            if (tn_rnn_forward(tp, &m->rnn, x1, o.h_n, o.c_n, NULL, &o) == TN_OK)
                p = tn_linear_forward(tp, &m->head, last_state(tp, m, &o, B));
        }
        fprintf(stderr, PROG ": %s: %s\n", what, tn_last_error());
        rc = -1;
    next:;
    }
    free(y);
    tn_tape_reset(tp);
    tn_tape_set_training(tp, train);
    tn_tape_set_grad(tp, grad);
    return rc;
}

/* ---- checkpoints ---- */

static tn_status meta_set_double(tn_meta *meta, const char *key, double v)
{
    char b[64];
    snprintf(b, sizeof b, "%.17g", v);
    return tn_meta_set(meta, key, b);
}

static int meta_get_double(const tn_meta *meta, const char *key, double *v)
{
    const char *s = tn_meta_get(meta, key);
    char *end;
    if (!s || !*s)
        return -1;
    errno = 0;
    *v = strtod(s, &end);
    return *end || errno || !isfinite(*v) ? -1 : 0;
}

static int model_save(const char *path, const model *m, int64_t step)
{
    tn_meta meta;
    tn_meta_init(&meta);
    char per[MAX_PERIODS * 32] = "", seed[32];
    for (int k = 0, at = 0; k < m->nper; k++)
        at += snprintf(per + at, sizeof per - (size_t)at, "%s%.17g", k ? "," : "", m->period[k]);
    snprintf(seed, sizeof seed, "%" PRIu64, m->seed);
    tn_status s = tn_meta_set(&meta, "format", "forecast 1");
    s = s ? s : tn_meta_set(&meta, "cell", m->cell);
    s = s ? s : tn_meta_set(&meta, "mode", m->direct ? "direct" : "ar");
    s = s ? s : tn_meta_set_int(&meta, "hidden", m->hidden);
    s = s ? s : tn_meta_set_int(&meta, "layers", m->layers);
    s = s ? s : tn_meta_set_int(&meta, "window", m->window);
    s = s ? s : tn_meta_set_int(&meta, "horizon", m->horizon);
    s = s ? s : tn_meta_set(&meta, "periods", per);
    s = s ? s : meta_set_double(&meta, "mean", m->mean);
    s = s ? s : meta_set_double(&meta, "std", m->std);
    s = s ? s : meta_set_double(&meta, "val_fraction", m->val_fraction);
    s = s ? s : tn_meta_set(&meta, "series", m->data ? "file" : "generated");
    if (m->data) {
        s = s ? s : tn_meta_set(&meta, "data", m->data);
        s = s ? s : tn_meta_set_int(&meta, "column", m->column);
    } else {
        s = s ? s : tn_meta_set(&meta, "series_seed", seed);
        s = s ? s : tn_meta_set_int(&meta, "length", m->length);
    }
    s = s ? s : tn_meta_set_int(&meta, "step", step);
    tn_params *sets[1] = {(tn_params *)&m->ps};
    s = s ? s : tn_save(path, sets, 1, &meta);
    if (s != TN_OK)
        fprintf(stderr, PROG ": --checkpoint %s: %s\n", path, tn_last_error());
    tn_meta_free(&meta);
    return s == TN_OK ? 0 : -1;
}

static int model_load(const char *path, model *m)
{
    memset(m, 0, sizeof *m);
    tn_meta meta;
    tn_meta_init(&meta);
    int rc = -1;
    static const char *const keys[4] = {"hidden", "layers", "window", "horizon"};
    int64_t *const vals[4] = {&m->hidden, &m->layers, &m->window, &m->horizon};
    if (ex_checkpoint_ints(PROG, path, &meta, keys, vals, 4))
        goto done;
    const char *fmt = tn_meta_get(&meta, "format"), *cell = tn_meta_get(&meta, "cell");
    const char *mode = tn_meta_get(&meta, "mode"), *per = tn_meta_get(&meta, "periods");
    const char *src = tn_meta_get(&meta, "series"), *why;
    static const char *const cells[2] = {"gru", "lstm"};
    for (int k = 0; cell && k < 2; k++)
        if (strcmp(cell, cells[k]) == 0)
            m->cell = cells[k];
    bool file = src && strcmp(src, "file") == 0;
    const char *data = tn_meta_get(&meta, "data"), *seed = tn_meta_get(&meta, "series_seed");
    char *end = NULL;
    if (seed && *seed >= '0' && *seed <= '9') {
        errno = 0;
        m->seed = strtoull(seed, &end, 10);
        if (errno)
            end = NULL;
    }
    if (!fmt || strcmp(fmt, "forecast 1") || !m->cell || !mode ||
        (strcmp(mode, "ar") && strcmp(mode, "direct")) || m->hidden < 1 || m->hidden > MAX_HIDDEN ||
        m->layers < 1 || m->layers > TN_RNN_MAX_LAYERS || m->window < 1 || m->window > MAX_WINDOW ||
        m->horizon < 1 || m->horizon > MAX_HORIZON || !per ||
        parse_periods(per, m->period, &m->nper, &why) || meta_get_double(&meta, "mean", &m->mean) ||
        meta_get_double(&meta, "std", &m->std) || !(m->std > 0) ||
        meta_get_double(&meta, "val_fraction", &m->val_fraction) ||
        !(m->val_fraction >= 0.01 && m->val_fraction <= 0.9) || !src ||
        (file ? !data || tn_meta_get_int(&meta, "column", &m->column) || m->column < 1
              : strcmp(src, "generated") || !end || *end ||
                    tn_meta_get_int(&meta, "length", &m->length) || m->length < 100 ||
                    m->length > MAX_LENGTH)) {
        fprintf(stderr,
                PROG ": --checkpoint %s: not a forecast checkpoint (bad or missing "
                     "format, cell, mode, sizes, periods, normalisation or series in its "
                     "metadata)\n",
                path);
        goto done;
    }
    m->direct = strcmp(mode, "direct") == 0;
    if (file && !(m->data = strdup(data)))
        goto done;
    /* the sizes against the file's tensors before the model is built */
    int64_t G = tn_cell_gates(ex_cell(m->cell)), H = m->hidden;
    char hh[32], sizes[200];
    snprintf(hh, sizeof hh, "rnn.weight_hh_l%d", (int)m->layers - 1);
    snprintf(sizes, sizeof sizes,
             "cell %s, hidden %" PRId64 ", layers %" PRId64 ", periods %d, "
             "mode %s, horizon %" PRId64,
             m->cell, H, m->layers, m->nper, mode, m->horizon);
    ex_shape want[3] = {{"rnn.weight_ih_l0", G * H, model_inputs(m)},
                        {hh, G * H, H},
                        {"head.weight", m->direct ? m->horizon : 1, H}};
    if (ex_check_shapes(PROG, path, sizes, want, 3) || model_build(m, 0))
        goto done;
    tn_params *sets[1] = {&m->ps};
    if (tn_load(path, sets, 1, NULL) != TN_OK) {
        fprintf(stderr, PROG ": --checkpoint %s: %s\n", path, tn_last_error());
        goto done;
    }
    rc = 0;
done:
    tn_meta_free(&meta);
    if (rc)
        model_free(m);
    return rc;
}

/* ---- baselines ---- */

/* AR(p) on z: z_t = c + a_1 z_{t-1} + ... + a_p z_{t-p}, least squares over
 * t = p..ntr-1 (the normal equations by Cholesky, in double). coef[0] = c,
 * coef[i] = a_i. A singular system (an exact recurrence of lower order, a
 * constant stretch) gets a small ridge, said on stderr. Returns 0 or -1. */
static int ar_fit(const double *z, int64_t ntr, int p, double *coef)
{
    int q = p + 1;
    double *A = calloc((size_t)q * (size_t)q, sizeof *A), *L = malloc(sizeof *L * (size_t)(q * q));
    double *b = calloc((size_t)q, sizeof *b), *row = malloc(sizeof *row * (size_t)q);
    if (!A || !L || !b || !row) {
        free(A), free(L), free(b), free(row);
        fprintf(stderr, PROG ": out of memory\n");
        return -1;
    }
    for (int64_t t = p; t < ntr; t++) {
        row[0] = 1;
        for (int i = 1; i <= p; i++)
            row[i] = z[t - i];
        for (int i = 0; i < q; i++) {
            for (int j = 0; j <= i; j++)
                A[i * q + j] += row[i] * row[j];
            b[i] += row[i] * z[t];
        }
    }
    double trace = 0, ridge = 0;
    for (int i = 0; i < q; i++)
        trace += A[i * q + i];
    for (int attempt = 0; attempt < 2; attempt++) {
        bool ok = true;
        for (int i = 0; i < q && ok; i++) /* A = L L^T, lower triangles */
            for (int j = 0; j <= i && ok; j++) {
                double s = A[i * q + j] + (i == j ? ridge : 0);
                for (int k = 0; k < j; k++)
                    s -= L[i * q + k] * L[j * q + k];
                if (i == j) {
                    ok = s > 1e-12 * (A[i * q + i] + ridge);
                    L[i * q + i] = ok ? sqrt(s) : 0;
                } else {
                    L[i * q + j] = s / L[j * q + j];
                }
            }
        if (ok)
            break;
        ridge = 1e-9 * trace / q;
        fprintf(stderr,
                PROG ": the AR(%d) normal equations are singular (is the series an "
                     "exact recurrence of lower order, or constant?); solved with a ridge of "
                     "%.3g\n",
                p, ridge);
    }
    for (int i = 0; i < q; i++) { /* L y = b, then L^T x = y */
        double s = b[i];
        for (int k = 0; k < i; k++)
            s -= L[i * q + k] * coef[k];
        coef[i] = s / L[i * q + i];
    }
    for (int i = q - 1; i >= 0; i--) {
        double s = coef[i];
        for (int k = i + 1; k < q; k++)
            s -= L[k * q + i] * coef[k];
        coef[i] = s / L[i * q + i];
    }
    free(A), free(L), free(b), free(row);
    return 0;
}

/* The AR(p) rollout of K values from origin o of z into out[0..K). */
static void ar_forecast(const double *z, int64_t o, int p, const double *coef, int64_t K,
                        double *out)
{
    for (int64_t k = 0; k < K; k++) {
        double s = coef[0];
        for (int i = 1; i <= p; i++) {
            int64_t t = o + k - i;
            s += coef[i] * (t >= o ? out[t - o] : z[t]);
        }
        out[k] = s;
    }
}

/* The AR fit in the series' units: x_t = c' + sum a_i x_{t-i}, with
 * c' = std c + mean (1 - sum a_i). */
static void ar_print(FILE *f, const double *coef, int p, double mean, double std)
{
    double sa = 0;
    for (int i = 1; i <= p; i++)
        sa += coef[i];
    fprintf(f, "ar(%d) fit on the training part: intercept %.17g coefficients", p,
            std * coef[0] + mean * (1 - sa));
    for (int i = 1; i <= p; i++)
        fprintf(f, " %.17g", coef[i]);
    fprintf(f, "\n");
}

/* ---- the data a command works on ---- */

typedef struct task {
    series s;
    double *z;           /* normalised */
    int64_t ntr;         /* the training part: 0..ntr-1 */
    int64_t *org, n_org; /* held-out origins */
    int p;
    double *coef; /* AR(p) */
} task;

static void task_free(task *t)
{
    free(t->s.v), free(t->z), free(t->org), free(t->coef);
    memset(t, 0, sizeof *t);
}

/* Normalise by the model's statistics, fit AR(p) on the training part, and
 * list the held-out origins with a full window, p values of history and K
 * held-out targets. Returns 0 or -1 (message printed). */
static int task_prepare(task *t, const model *m, int p, int64_t K, const char *src)
{
    int64_t n = t->s.n, nva = (int64_t)floor(m->val_fraction * (double)n);
    t->ntr = n - nva;
    t->p = p;
    int64_t first = t->ntr > m->window ? t->ntr : m->window;
    first = first > p ? first : p;
    int64_t need_tr = m->window + (m->direct ? m->horizon : 1);
    need_tr = need_tr > 2 * p + 2 ? need_tr : 2 * p + 2;
    if (t->ntr < need_tr || n - K < first) {
        fprintf(stderr,
                PROG ": %s: %" PRId64 " values: too few for a training part of at "
                     "least %" PRId64 " (window %" PRId64 " and its targets, and twice "
                     "AR(%d)'s order) and a held-out part (the last %g) of at least %" PRId64
                     " (the horizon)\n",
                src, n, need_tr, m->window, p, m->val_fraction, K);
        return -1;
    }
    t->z = malloc(sizeof *t->z * (size_t)n);
    t->n_org = n - K - first + 1;
    t->org = malloc(sizeof *t->org * (size_t)t->n_org);
    t->coef = malloc(sizeof *t->coef * (size_t)(p + 1));
    if (!t->z || !t->org || !t->coef) {
        fprintf(stderr, PROG ": out of memory\n");
        return -1;
    }
    for (int64_t i = 0; i < n; i++)
        t->z[i] = (t->s.v[i] - m->mean) / m->std;
    for (int64_t i = 0; i < t->n_org; i++)
        t->org[i] = first + i;
    return ar_fit(t->z, t->ntr, p, t->coef);
}

/* The series of o (--data), else the model's (its file, or generated). */
static int task_read(task *t, const opts *o, const model *m, const char **src)
{
    memset(t, 0, sizeof *t);
    const char *path = o->data ? o->data : m->data;
    int64_t column = o->data ? o->column : m->column;
    *src = path ? path : "the generated series";
    if (path)
        return series_read(&t->s, path, column);
    if (series_generate(&t->s, m->length, m->seed)) {
        fprintf(stderr, PROG ": out of memory\n");
        return -1;
    }
    return 0;
}

/* Errors per forecast step of the RNN, naive and AR forecasts. */
typedef struct scores {
    double *mse, *mae; /* [3 * K]: method-major (rnn, naive, ar) */
    int64_t K;
} scores;

/* Score every held-out origin: the RNN's forecasts (fc, normalised, n_org
 * x K) and the baselines, in the series' units. */
static void score(const task *t, const model *m, const double *fc, int64_t K, scores *sc,
                  double *tmp)
{
    memset(sc->mse, 0, sizeof *sc->mse * (size_t)(3 * K));
    memset(sc->mae, 0, sizeof *sc->mae * (size_t)(3 * K));
    for (int64_t i = 0; i < t->n_org; i++) {
        int64_t o = t->org[i];
        ar_forecast(t->z, o, t->p, t->coef, K, tmp);
        for (int64_t k = 0; k < K; k++) {
            double truth = t->s.v[o + k];
            double e[3] = {m->mean + m->std * fc[i * K + k] - truth, t->s.v[o - 1] - truth,
                           m->mean + m->std * tmp[k] - truth};
            for (int j = 0; j < 3; j++) {
                sc->mse[j * K + k] += e[j] * e[j] / (double)t->n_org;
                sc->mae[j * K + k] += fabs(e[j]) / (double)t->n_org;
            }
        }
    }
}

static double mean_of(const double *v, int64_t K)
{
    double s = 0;
    for (int64_t k = 0; k < K; k++)
        s += v[k];
    return s / (double)K;
}

/* ---- train ---- */

/* A training run's state for the driver's hooks (train.h). */
typedef struct fc_run {
    const model *m;
    const task *t;
    const opts *o;
    uint64_t n_start; /* window starts 0..n_start-1: their targets are in the training part */
    int64_t *starts;  /* the batch's window ends [B] */
    double *fc, *tmp; /* the held-out forecasts [n_org * K], a rollout [K] */
    scores sc;
    tn_rng rng; /* the batches */
} fc_run;

/* B windows of the training part, teacher-forced (mode ar: each next
 * value) or the K values after them (direct), and their MSE. */
static tn_tensor *fc_forward(void *ctx, tn_tape *tp, int64_t step)
{
    (void)step;
    fc_run *r = ctx;
    const model *m = r->m;
    int64_t B = r->o->batch, W = m->window, K = m->horizon, Y = m->direct ? K : W;
    for (int64_t b = 0; b < B; b++)
        r->starts[b] = (int64_t)(tn_rng_next(&r->rng) % r->n_start) + W;
    tn_rnn_out out;
    tn_tensor *x = window_batch(tp, m, r->t->z, r->starts, B), *pred = NULL;
    tn_tensor *tg = tn_tape_tensor(tp, TN_F32, m->direct ? 2 : 3,
                                   m->direct ? (int64_t[]){B, K} : (int64_t[]){B, W, 1});
    if (tg) /* direct: the K values after the window; ar: each next value */
        for (int64_t b = 0; b < B; b++)
            for (int64_t j = 0; j < Y; j++)
                ((float *)tg->data)[b * Y + j] =
                    (float)r->t->z[r->starts[b] + j - (m->direct ? 0 : W - 1)];
    if (x && tg && tn_rnn_forward(tp, &m->rnn, x, NULL, NULL, NULL, &out) == TN_OK)
        pred = tn_linear_forward(tp, &m->head, m->direct ? last_state(tp, m, &out, B) : out.output);
    return pred ? tn_mse(tp, pred, tg, TN_REDUCE_MEAN) : NULL;
}

/* The held-out MSE (mean over the K forecast steps) of the RNN and the
 * baselines (the last value, AR(p)). */
static int fc_evaluate(void *ctx, tn_tape *tp, double *values)
{
    fc_run *r = ctx;
    int64_t K = r->m->horizon;
    if (forecast_rnn(tp, r->m, r->t->z, r->t->org, r->t->n_org, K, r->fc, "held-out part"))
        return -1;
    score(r->t, r->m, r->fc, K, &r->sc, r->tmp);
    for (int j = 0; j < 3; j++)
        values[j] = mean_of(r->sc.mse + j * K, K);
    return 0;
}

static int fc_save(void *ctx, tn_tape *tp, int64_t step)
{
    (void)tp;
    fc_run *r = ctx;
    return model_save(r->o->checkpoint, r->m, step);
}

static int cmd_train(const opts *o)
{
    if (ex_train_check_outputs(PROG, o->checkpoint, o->log, o->loss_log, o->curve))
        return 2;
    model m = {.cell = o->cell,
               .direct = strcmp(o->mode, "direct") == 0,
               .hidden = o->hidden,
               .layers = o->layers,
               .window = o->window,
               .horizon = o->horizon ? o->horizon : 12,
               .column = o->column,
               .length = o->length,
               .seed = o->seed,
               .val_fraction = o->val_fraction};
    const char *why;
    if (parse_periods(o->periods, m.period, &m.nper, &why)) {
        fprintf(stderr, PROG ": --periods '%s': want %s\n", o->periods, why);
        return 2;
    }
    if (o->data && !(m.data = strdup(o->data))) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    task t;
    const char *src;
    tn_tape *tp = NULL;
    tn_optim *opt = NULL;
    int64_t K = m.horizon, B = o->batch, W = m.window;
    fc_run run = {.m = &m, .t = &t, .o = o};
    run.starts = malloc(sizeof *run.starts * (size_t)B);
    int rc = 1;
    if (task_read(&t, o, &m, &src))
        goto done;
    /* the normalisation: the training part's mean and standard deviation */
    int64_t ntr = t.s.n - (int64_t)floor(m.val_fraction * (double)t.s.n);
    double s1 = 0, s2 = 0;
    for (int64_t i = 0; i < ntr && ntr > 0; i++)
        s1 += t.s.v[i];
    m.mean = ntr > 0 ? s1 / (double)ntr : 0;
    for (int64_t i = 0; i < ntr; i++)
        s2 += (t.s.v[i] - m.mean) * (t.s.v[i] - m.mean);
    m.std = ntr > 1 ? sqrt(s2 / (double)(ntr - 1)) : 0;
    if (!isfinite(m.mean) || !isfinite(m.std)) {
        fprintf(stderr,
                PROG ": %s: the training part's mean or standard deviation is not a "
                     "finite number (values too large)\n",
                src);
        goto done;
    }
    if (!(m.std > 1e-12 * (fabs(m.mean) + 1)) && ntr > 1) {
        fprintf(stderr,
                PROG ": %s: the training part (%" PRId64 " values) is constant: nothing "
                     "to learn\n",
                src, ntr);
        goto done;
    }
    if (task_prepare(&t, &m, (int)o->ar, K, src) || model_build(&m, o->seed))
        goto done;
    tn_adam_opts ao = tn_adam_defaults();
    ao.lr = o->lr;
    opt = tn_optim_adam(&m.ps, &ao);
    tp = tn_tape_new();
    run.fc = malloc(sizeof *run.fc * (size_t)(t.n_org * K));
    run.tmp = malloc(sizeof *run.tmp * (size_t)K);
    run.sc.mse = malloc(sizeof *run.sc.mse * (size_t)(3 * K));
    run.sc.mae = malloc(sizeof *run.sc.mae * (size_t)(3 * K));
    if (!opt || !tp || !run.starts || !run.fc || !run.tmp || !run.sc.mse || !run.sc.mae) {
        fprintf(stderr, PROG ": %s\n", tn_last_error()[0] ? tn_last_error() : "out of memory");
        goto done;
    }
    fprintf(stderr,
            PROG ": %s %s, H=%" PRId64 " L=%" PRId64 ", window %" PRId64 ", horizon %" PRId64
                 ", %d periodic features; %s: %" PRId64 " values, training part %" PRId64
                 " (mean %.4g, std %.4g), %" PRId64 " held-out origins; params %" PRId64
                 "; %d threads\n",
            o->cell, o->mode, m.hidden, m.layers, W, K, m.nper, src, t.s.n, t.ntr, m.mean, m.std,
            t.n_org, tn_params_numel(&m.ps), tn_num_threads());
    ar_print(stdout, t.coef, t.p, m.mean, m.std);
    fflush(stdout);
    /* windows start at s in [0, ntr - W - (direct ? K : 1)]: their targets
     * are in the training part */
    run.n_start = (uint64_t)(t.ntr - W - (m.direct ? K : 1) + 1);
    tn_rng_seed(&run.rng, o->seed ^ DATA_SEED_MIX);
    static const ex_col cols[] = {{"val_mse", 5}, {"naive_mse", 5}, {"ar_mse", 5}};
    ex_train tr = {.prog = PROG,
                   .tp = tp,
                   .ps = &m.ps,
                   .opt = opt,
                   .steps = o->steps,
                   .clip = o->clip,
                   .eval_every = o->eval_every,
                   .log = o->log,
                   .loss_log = o->loss_log,
                   .curve = o->curve,
                   .per_step = (double)B,
                   .unit = "windows",
                   .ctx = &run,
                   .forward = fc_forward,
                   .evaluate = fc_evaluate,
                   .save = o->checkpoint ? fc_save : NULL,
                   .cols = cols,
                   .n_cols = 3};
    rc = ex_train_run(&tr);
done:
    free(run.starts), free(run.fc), free(run.tmp), free(run.sc.mse), free(run.sc.mae);
    tn_optim_free(opt);
    tn_tape_free(tp);
    task_free(&t);
    model_free(&m);
    return rc;
}

/* ---- eval ---- */

/* The plot's CSV: from successive origins K apart, the truth and each
 * forecast, each segment starting at the last known value (a blank line
 * between segments breaks the lines). */
static int write_plot(const opts *o, const task *t, const model *m, const double *fc, int64_t K,
                      double *tmp, char *csv, size_t cap)
{
    snprintf(csv, cap, "%s.csv", o->plot);
    FILE *f = fopen(csv, "w");
    if (!f) {
        fprintf(stderr, PROG ": %s: %s\n", csv, strerror(errno));
        return -1;
    }
    int64_t len = o->plot_length ? o->plot_length : 8 * K;
    fprintf(f, "t,truth,rnn (%s),last value,ar(%d)\n", m->direct ? "direct" : "rollout", t->p);
    for (int64_t i = 0; i < t->n_org && i < len; i += K) {
        int64_t org = t->org[i];
        double x0 = t->s.v[org - 1];
        ar_forecast(t->z, org, t->p, t->coef, K, tmp);
        fprintf(f, "%" PRId64 ",%.6g,%.6g,%.6g,%.6g\n", org - 1, x0, x0, x0, x0);
        for (int64_t k = 0; k < K; k++)
            fprintf(f, "%" PRId64 ",%.6g,%.6g,%.6g,%.6g\n", org + k, t->s.v[org + k],
                    m->mean + m->std * fc[i * K + k], x0, m->mean + m->std * tmp[k]);
        fprintf(f, "\n");
    }
    return fclose(f) ? -1 : 0;
}

static int cmd_eval(const opts *o)
{
    if (o->plot && ex_check_output(PROG, "--plot", o->plot))
        return 2;
    model m;
    if (model_load(o->checkpoint, &m))
        return 1;
    task t;
    const char *src;
    int64_t K = m.horizon;
    int rc = 1;
    tn_tape *tp = tn_tape_new();
    double *fc = NULL, *tmp = malloc(sizeof *tmp * (size_t)K);
    scores sc = {.mse = malloc(sizeof *sc.mse * (size_t)(3 * K)),
                 .mae = malloc(sizeof *sc.mae * (size_t)(3 * K))};
    if (task_read(&t, o, &m, &src) || task_prepare(&t, &m, (int)o->ar, K, src))
        goto done;
    fc = malloc(sizeof *fc * (size_t)(t.n_org * K));
    if (!tp || !fc || !tmp || !sc.mse || !sc.mae) {
        fprintf(stderr, PROG ": out of memory\n");
        goto done;
    }
    if (forecast_rnn(tp, &m, t.z, t.org, t.n_org, K, fc, o->checkpoint))
        goto done;
    score(&t, &m, fc, K, &sc, tmp);
    printf("%s: %" PRId64 " values, held out %" PRId64 "..%" PRId64 "; %" PRId64 " origins, "
           "horizon %" PRId64 "; model %s %s H=%" PRId64 " L=%" PRId64 " window %" PRId64 "\n",
           src, t.s.n, t.ntr, t.s.n - 1, t.n_org, K, m.cell, m.direct ? "direct" : "ar", m.hidden,
           m.layers, m.window);
    ar_print(stdout, t.coef, t.p, m.mean, m.std);
    char ar_mse[24], ar_mae[24];
    snprintf(ar_mse, sizeof ar_mse, "ar%d_mse", t.p);
    snprintf(ar_mae, sizeof ar_mae, "ar%d_mae", t.p);
    printf("%5s %11s %11s %11s %11s %11s %11s\n", "step", "rnn_mse", "naive_mse", ar_mse, "rnn_mae",
           "naive_mae", ar_mae);
    for (int64_t k = 0; k <= K; k++) {
        if (k < K)
            printf("%5" PRId64, k + 1);
        else
            printf("%5s", "mean");
        for (int j = 0; j < 6; j++) {
            const double *v = (j < 3 ? sc.mse : sc.mae) + (j % 3) * K;
            printf(" %11.5f", k < K ? v[k] : mean_of(v, K));
        }
        printf("\n");
    }
    rc = 0;
    if (o->plot) {
        char csv[4096], title[160];
        snprintf(title, sizeof title,
                 "%s: %" PRId64 "-step forecasts from successive held-out "
                 "origins",
                 src, K);
        if (write_plot(o, &t, &m, fc, K, tmp, csv, sizeof csv) ||
            ex_plot_lines(PROG, o->plot, csv, 4, title, "t", "value", false, 1100, 500) ==
                PLOT_ERROR)
            rc = 1;
    }
done:
    free(fc), free(tmp), free(sc.mse), free(sc.mae);
    tn_tape_free(tp);
    task_free(&t);
    model_free(&m);
    return rc;
}

/* ---- predict ---- */

static int cmd_predict(const opts *o)
{
    model m;
    if (model_load(o->checkpoint, &m))
        return 1;
    int64_t K = o->horizon ? o->horizon : m.horizon;
    if (m.direct && K != m.horizon) {
        fprintf(stderr,
                PROG ": --horizon %" PRId64 ": the checkpoint %s forecasts %" PRId64
                     " values at once (mode direct); only mode ar rolls out further\n",
                K, o->checkpoint, m.horizon);
        model_free(&m);
        return 2;
    }
    task t;
    const char *src;
    int rc = 1;
    tn_tape *tp = tn_tape_new();
    double *fc = malloc(sizeof *fc * (size_t)K), *ar = malloc(sizeof *ar * (size_t)K);
    if (task_read(&t, o, &m, &src))
        goto done;
    int64_t n = t.s.n, org = n;
    if (n < m.window || n < o->ar || n < 2 * o->ar + 2) {
        fprintf(stderr,
                PROG ": %s: %" PRId64 " values; predict needs the window (%" PRId64
                     ") and twice AR(%" PRId64 ")'s order\n",
                src, n, m.window, o->ar);
        goto done;
    }
    t.z = malloc(sizeof *t.z * (size_t)n);
    t.coef = malloc(sizeof *t.coef * (size_t)(o->ar + 1));
    if (!tp || !fc || !ar || !t.z || !t.coef) {
        fprintf(stderr, PROG ": out of memory\n");
        goto done;
    }
    for (int64_t i = 0; i < n; i++)
        t.z[i] = (t.s.v[i] - m.mean) / m.std;
    /* the baseline fitted on the whole series: predict forecasts its future */
    if (ar_fit(t.z, n, (int)o->ar, t.coef) ||
        forecast_rnn(tp, &m, t.z, &org, 1, K, fc, o->checkpoint))
        goto done;
    ar_forecast(t.z, org, (int)o->ar, t.coef, K, ar);
    printf("# %s: %" PRId64 " values; forecasts of t = %" PRId64 "..%" PRId64 " (AR(%" PRId64
           ") fitted on all of them)\n",
           src, n, n, n + K - 1, o->ar);
    printf("t,rnn,last_value,ar%" PRId64 "\n", o->ar);
    for (int64_t k = 0; k < K; k++)
        printf("%" PRId64 ",%.6g,%.6g,%.6g\n", n + k, m.mean + m.std * fc[k], t.s.v[n - 1],
               m.mean + m.std * ar[k]);
    rc = 0;
done:
    free(fc), free(ar);
    tn_tape_free(tp);
    task_free(&t);
    model_free(&m);
    return rc;
}

/* The model of --checkpoint alone (export.h), its parameters named as
 * the PyTorch module's state_dict (tools/torch_models.py); the metadata
 * keeps what forecast needs to read it back. */
static int cmd_export(const opts *o)
{
    int rc = ex_export_check(PROG, o->checkpoint, o->out);
    if (rc)
        return rc;
    model m;
    if (model_load(o->checkpoint, &m))
        return 1;
    rc = ex_export_write(PROG, o->checkpoint, o->out, NULL, &m.ps);
    model_free(&m);
    return rc;
}

int main(int argc, char **argv)
{
    opts o;
    int command, rc = parse_opts(argc, argv, &o, &command);
    if (rc != EX_OK)
        return rc == EX_DONE ? 0 : 2;
    if ((command == 1 || command == 2) && !o.checkpoint) {
        fprintf(stderr, PROG ": %s needs --checkpoint\n", command == 1 ? "eval" : "predict");
        return 2;
    }
    if (ex_runtime(PROG, o.threads))
        return 1;
    switch (command) {
    case 0: return cmd_train(&o);
    case 1: return cmd_eval(&o);
    case 2: return cmd_predict(&o);
    default: return cmd_export(&o);
    }
}
