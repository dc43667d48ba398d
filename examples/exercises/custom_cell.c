/* custom_cell - a character language model whose recurrent cell is written
 * by the user from the library's generic ops (tn_addmm, tn_narrow, tn_mul,
 * tn_add, tn_sigmoid, tn_tanh, ...): no cell-specific code in the library,
 * and backpropagation through time comes from the tape.
 *
 *   custom_cell train  [--cell peephole|mgu] [--data FILE] [--hidden H] [--embed E]
 *                      [--batch B] [--seq T] [--steps N] [--lr X] [--clip X] [--seed S]
 *                      [--threads N] [--checkpoint PATH] [--eval-every N] [--log CSV]
 *                      [--loss-log CSV]
 *   custom_cell sample --checkpoint PATH [--prime TEXT] [--length N] [--temperature X] ...
 *   custom_cell eval   --checkpoint PATH --data FILE
 *   custom_cell gradcheck [--cell peephole|mgu] [--cut-bptt]
 *   custom_cell bench  [--cell peephole|mgu] [--hidden H] [--batch B] [--seq T] [--seconds S]
 *
 * Cells (neither is in PyTorch's torch.nn):
 *   peephole  LSTM with peephole connections (Gers & Schmidhuber 2000):
 *             i = s(x W_i + h U_i + c_{t-1} * p_i + b_i)
 *             f = s(x W_f + h U_f + c_{t-1} * p_f + b_f)
 *             g = tanh(x W_g + h U_g + b_g),  c_t = f c_{t-1} + i g
 *             o = s(x W_o + h U_o + c_t * p_o + b_o),  h_t = o tanh(c_t)
 *   mgu       minimal gated unit (Zhou et al. 2016):
 *             f = s(x W_f + h U_f + b_f)
 *             n = tanh(x W_n + (f * h) U_n + b_n),  h_t = (1 - f) h + f n
 *
 * Model: embed = Embedding(V, E) -> cell (H) -> head = Linear(H, V) ->
 * cross-entropy; Adam, the global gradient norm clipped to --clip (1.0).
 * Parameters (PyTorch's layouts): embed.weight [V, E], cell.weight_ih
 * [G*H, E], cell.weight_hh [G*H, H], cell.bias [G*H] (gates i, f, g, o for
 * peephole, G = 4; f, n for mgu, G = 2), cell.weight_ci, cell.weight_cf,
 * cell.weight_co [H] (the peepholes), head.weight [V, H], head.bias [V].
 * Text, vocabulary, splits and truncated-BPTT windows are char_rnn's (the
 * shared helper char_model.h, and tn_lm_window of tensor/lm.h);
 * checkpoints are safetensors of the parameters with the vocabulary in
 * the metadata (no resume).
 *
 * tests/torch_custom_cell.py is the same model in PyTorch (the parity
 * test), bench/torch_custom_cell.py its benchmark.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <blis.h> /* bench: BLIS's configuration id, for bench/compare */
#include <tensor/tensor.h>

#include "char_model.h"
#include "cli.h"
#include "train.h"

#define PROG "custom_cell"

/* ---- the model ---- */

typedef enum cell_kind { PEEPHOLE = 0, MGU = 1 } cell_kind;
static const char *const cell_names[] = {"peephole", "mgu"};

typedef struct cell_model {
    cell_kind kind;
    int64_t V, E, H;
    tn_params ps;
    tn_embedding embed;
    tn_tensor *w_ih, *w_hh, *bias; /* [G*H, E], [G*H, H], [G*H] */
    tn_tensor *p_i, *p_f, *p_o;    /* peepholes [H] (peephole only) */
    tn_linear head;
    bool cut_bptt; /* gradcheck's negative control: detach the state at every step */
    bool eager;    /* run the step loop here instead of through tn_scan (bench --eager) */
} cell_model;

static int gates(cell_kind k) { return k == PEEPHOLE ? 4 : 2; }

static int cell_from_name(const char *name)
{
    for (int k = 0; k < 2; k++)
        if (strcmp(name, cell_names[k]) == 0)
            return k;
    return -1;
}

/* The parameters, initialised as PyTorch's modules: the cell's (peepholes
 * included) uniform(+-1/sqrt(H)) as nn.LSTM's, the embedding N(0, 1), the
 * head as nn.Linear. Returns 0, or -1 (message printed; nothing to free). */
static int model_init(cell_model *m, cell_kind kind, int64_t V, int64_t E, int64_t H, tn_dtype dt,
                      tn_rng *r)
{
    *m = (cell_model){.kind = kind, .V = V, .E = E, .H = H};
    tn_params_init(&m->ps);
    int64_t GH = gates(kind) * H;
    bool ok = tn_embedding_init(&m->embed, &m->ps, "embed", V, E, -1, dt, r) == TN_OK;
    if (ok) {
        m->w_ih = tn_params_new(&m->ps, "cell", "weight_ih", dt, 2, (int64_t[]){GH, E});
        m->w_hh = tn_params_new(&m->ps, "cell", "weight_hh", dt, 2, (int64_t[]){GH, H});
        m->bias = tn_params_new(&m->ps, "cell", "bias", dt, 1, (int64_t[]){GH});
        if (kind == PEEPHOLE) {
            m->p_i = tn_params_new(&m->ps, "cell", "weight_ci", dt, 1, (int64_t[]){H});
            m->p_f = tn_params_new(&m->ps, "cell", "weight_cf", dt, 1, (int64_t[]){H});
            m->p_o = tn_params_new(&m->ps, "cell", "weight_co", dt, 1, (int64_t[]){H});
        }
        tn_tensor *cell[6] = {m->w_ih, m->w_hh, m->bias, m->p_i, m->p_f, m->p_o};
        double k = 1.0 / sqrt((double)H);
        for (int j = 0; j < (kind == PEEPHOLE ? 6 : 3) && ok; j++)
            ok = cell[j] && tn_init_uniform(cell[j], r, -k, k) == TN_OK;
    }
    if (!ok || tn_linear_init(&m->head, &m->ps, "head", H, V, true, dt, r) != TN_OK) {
        fprintf(stderr, PROG ": %s\n", tn_last_error());
        tn_params_free(&m->ps);
        return -1;
    }
    return 0;
}

/* One peephole LSTM step. xt [B, 4H]: this step's rows of the input
 * projection (x W^T + b, made for all steps at once); u = W_hh^T [H, 4H].
 * *c: c_{t-1} in, c_t out. Returns h_t. */
static tn_tensor *peephole_step(tn_tape *tp, const cell_model *m, tn_tensor *xt, tn_tensor *u,
                                tn_tensor *h, tn_tensor **c)
{
    int64_t H = m->H;
    tn_tensor *z = tn_addmm(tp, xt, h, u); /* xt + h U^T: every gate, one product */
    tn_tensor *zi = tn_narrow(tp, z, 1, 0, H), *zf = tn_narrow(tp, z, 1, H, H);
    tn_tensor *zg = tn_narrow(tp, z, 1, 2 * H, H), *zo = tn_narrow(tp, z, 1, 3 * H, H);
    tn_tensor *i = tn_sigmoid(tp, tn_add(tp, zi, tn_mul(tp, *c, m->p_i)));
    tn_tensor *f = tn_sigmoid(tp, tn_add(tp, zf, tn_mul(tp, *c, m->p_f)));
    *c = tn_add(tp, tn_mul(tp, f, *c), tn_mul(tp, i, tn_tanh(tp, zg)));
    tn_tensor *o = tn_sigmoid(tp, tn_add(tp, zo, tn_mul(tp, *c, m->p_o)));
    return tn_mul(tp, o, tn_tanh(tp, *c));
}

/* One MGU step. xt [B, 2H] (x W^T + b for f and n); u = W_hh^T [H, 2H]. The
 * second product needs f, so a step makes two. (1 - f) h + f n is written
 * h + f (n - h): the same, one op fewer. */
static tn_tensor *mgu_step(tn_tape *tp, const cell_model *m, tn_tensor *xt, tn_tensor *u,
                           tn_tensor *h)
{
    int64_t H = m->H;
    tn_tensor *f =
        tn_sigmoid(tp, tn_addmm(tp, tn_narrow(tp, xt, 1, 0, H), h, tn_narrow(tp, u, 1, 0, H)));
    tn_tensor *n = tn_tanh(
        tp, tn_addmm(tp, tn_narrow(tp, xt, 1, H, H), tn_mul(tp, f, h), tn_narrow(tp, u, 1, H, H)));
    return tn_add(tp, h, tn_mul(tp, f, tn_sub(tp, n, h)));
}

/* What the step function needs besides its inputs. */
typedef struct step_ctx {
    const cell_model *m;
    tn_tensor *u; /* W_hh^T: a view of the parameter */
} step_ctx;

/* One step of the cell as tn_scan calls it: x[0] [B, G*H] is the step's
 * rows of the input projection; state h (and c for peephole) in st, the
 * next ones out in next. */
static tn_status cell_step(tn_tape *tp, void *ctx, tn_tensor *const *x, tn_tensor *const *st,
                           tn_tensor **next)
{
    const step_ctx *c = ctx;
    const cell_model *m = c->m;
    tn_tensor *h = st[0], *cs = m->kind == PEEPHOLE ? st[1] : NULL;
    if (m->cut_bptt) { /* this step sees the state as a constant */
        h = tn_detach(tp, h);
        cs = cs ? tn_detach(tp, cs) : NULL;
    }
    if (m->kind == PEEPHOLE) {
        next[0] = peephole_step(tp, m, x[0], c->u, h, &cs);
        next[1] = cs;
    } else {
        next[0] = mgu_step(tp, m, x[0], c->u, h);
    }
    return next[0] ? TN_OK : TN_ERR_STATE;
}

/* Logits [T*B, V] for ids [T, B] (I32, time-major: row t*B + b of the
 * result is step t of stream b) from the state *h, *c ([B, H]; c unused by
 * mgu), which get the final state. The time loop is tn_scan's: the step
 * is recorded once and replayed as one op (or, with m->eager, the loop is
 * written out here, one op per step and gate: the same values, slower).
 * Tape tensors; NULL on error (the tape's error is set). */
static tn_tensor *model_forward(tn_tape *tp, const cell_model *m, tn_tensor *ids, tn_tensor **h,
                                tn_tensor **c)
{
    int64_t T = ids->shape[0], B = ids->shape[1], H = m->H;
    int ns = m->kind == PEEPHOLE ? 2 : 1;
    /* The input projections of all T steps: one [T*B, E] x [E, G*H] product. */
    tn_tensor *x =
        tn_reshape(tp, tn_embedding_forward(tp, &m->embed, ids), 2, (int64_t[]){T * B, m->E});
    tn_tensor *xp = tn_addmm(tp, m->bias, x, tn_transpose(tp, m->w_ih, 0, 1));
    step_ctx sc = {m, tn_transpose(tp, m->w_hh, 0, 1)}; /* a view: no copy */
    tn_tensor *st[2] = {*h, *c}, *y;
    if (!m->eager) {
        xp = tn_reshape(tp, xp, 3, (int64_t[]){T, B, gates(m->kind) * H});
        y = tn_scan(tp, cell_step, &sc, 1, &xp, ns, st); /* [T, B, ns*H]: h (and c) */
    } else {
        tn_tensor **ys = tn_tape_alloc(tp, (size_t)T * sizeof *ys), *next[2];
        if (!ys)
            return NULL;
        for (int64_t t = 0; t < T; t++) {
            tn_tensor *xt = tn_narrow(tp, xp, 0, t * B, B); /* step t's rows: a view */
            if (cell_step(tp, &sc, &xt, st, next) != TN_OK)
                return NULL;
            st[0] = next[0], st[1] = next[1];
            ys[t] = ns == 1 ? st[0] : tn_concat(tp, 2, st, 1);
        }
        y = tn_stack(tp, (int)T, ys, 0);
    }
    if (!y)
        return NULL;
    tn_tensor *last = tn_narrow(tp, y, 0, T - 1, 1);
    *h = tn_reshape(tp, tn_contiguous(tp, tn_narrow(tp, last, 2, 0, H)), 2, (int64_t[]){B, H});
    if (ns == 2)
        *c = tn_reshape(tp, tn_contiguous(tp, tn_narrow(tp, last, 2, H, H)), 2, (int64_t[]){B, H});
    tn_tensor *hs = ns == 1 ? y : tn_contiguous(tp, tn_narrow(tp, y, 2, 0, H));
    return tn_linear_forward(tp, &m->head, tn_reshape(tp, hs, 2, (int64_t[]){T * B, H}));
}

/* The carried state between windows (truncated BPTT): heap tensors [B, H]. */
typedef struct state {
    tn_tensor *h, *c;
} state;

static void state_new(state *s, int64_t B, int64_t H, tn_dtype dt)
{
    s->h = tn_tensor_new(dt, 2, (int64_t[]){B, H});
    s->c = tn_tensor_new(dt, 2, (int64_t[]){B, H});
}

static void state_free(state *s)
{
    tn_tensor_free(s->h);
    tn_tensor_free(s->c);
}

/* ids [B*T] (row-major [B, T]) into dst [T*B] (time-major). */
static void time_major(const int32_t *src, int64_t B, int64_t T, int32_t *dst)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            dst[t * B + b] = src[b * T + t];
}

/* The loss of one window on tp: x [B, T] and y [B*T] (tn_lm_window's layout),
 * from the state s; *fin gets the final state (tape tensors). reduce: mean
 * (training) or sum (eval). NULL on error. */
static tn_tensor *window_loss(tn_tape *tp, const cell_model *m, const tn_tensor *x,
                              const tn_tensor *y, const state *s, state *fin, tn_reduction red)
{
    int64_t B = x->shape[0], T = x->shape[1];
    tn_tensor *ids = tn_tape_tensor(tp, TN_I32, 2, (int64_t[]){T, B});
    tn_tensor *tgt = tn_tape_tensor(tp, TN_I32, 1, (int64_t[]){T * B});
    if (!ids || !tgt)
        return NULL;
    time_major(x->data, B, T, ids->data);
    time_major(y->data, B, T, tgt->data);
    *fin = *s;
    return tn_cross_entropy(tp, model_forward(tp, m, ids, &fin->h, &fin->c), tgt, -1, red);
}

/* Mean negative log-likelihood (nats per character) of ids[1..n) read as
 * one stream from a zero state, in windows of 256, without gradients. NAN
 * on error (message printed) or when n < 2. */
static double model_eval(const cell_model *m, const int32_t *ids, int64_t n)
{
    tn_tape *tp = tn_tape_new();
    tn_tape_set_grad(tp, false);
    state s;
    state_new(&s, 1, m->H, TN_F32);
    double total = n < 2 ? NAN : 0;
    for (int64_t at = 0; at + 1 < n && !isnan(total);) {
        int64_t len = n - 1 - at < 256 ? n - 1 - at : 256;
        tn_tape_reset(tp);
        tn_tensor *x = tn_tape_tensor(tp, TN_I32, 2, (int64_t[]){1, len});
        tn_tensor *y = tn_tape_tensor(tp, TN_I32, 1, (int64_t[]){len});
        memcpy(x->data, ids + at, (size_t)len * sizeof(int32_t));
        memcpy(y->data, ids + at + 1, (size_t)len * sizeof(int32_t));
        state fin;
        tn_tensor *loss = window_loss(tp, m, x, y, &s, &fin, TN_REDUCE_SUM);
        if (!loss || tn_tape_error(tp)) {
            fprintf(stderr, PROG ": eval: %s\n", tn_last_error());
            total = NAN;
            break;
        }
        tn_tensor_copy(s.h, fin.h);
        tn_tensor_copy(s.c, fin.c);
        total += tn_tensor_get(loss, 0);
        at += len;
    }
    state_free(&s);
    tn_tape_free(tp);
    return total / (double)(n - 1);
}

/* ---- checkpoints ---- */

static int save_cell_model(const char *path, cell_model *m, const ex_text *t, int64_t step)
{
    char *vocab = malloc((size_t)t->V * 4 + 1);
    size_t k = 0;
    for (int v = 0; v < t->V; v++)
        k += (size_t)ex_utf8_encode(t->vocab[v], vocab + k);
    vocab[k] = '\0';
    tn_meta meta;
    tn_meta_init(&meta);
    tn_meta_set(&meta, "format", "custom_cell 1");
    tn_meta_set(&meta, "cell", cell_names[m->kind]);
    tn_meta_set_int(&meta, "hidden", m->H);
    tn_meta_set_int(&meta, "embed", m->E);
    tn_meta_set_int(&meta, "step", step);
    tn_meta_set(&meta, "vocab", vocab);
    tn_params *sets[1] = {&m->ps};
    tn_status st = tn_save(path, sets, 1, &meta);
    if (st != TN_OK)
        fprintf(stderr, PROG ": %s\n", tn_last_error());
    tn_meta_free(&meta);
    free(vocab);
    return st == TN_OK ? 0 : -1;
}

/* The model and vocabulary of a checkpoint written by train. The metadata
 * is checked before it sizes anything. Returns 0 or -1 (message printed). */
static int load_cell_model(const char *path, cell_model *m, ex_text *t)
{
    tn_meta meta;
    tn_meta_init(&meta);
    int64_t H = 0, E = 0;
    int rc = -1;
    if (tn_load_meta(path, &meta) != TN_OK) {
        fprintf(stderr, PROG ": %s\n", tn_last_error());
        goto out;
    }
    const char *fmt = tn_meta_get(&meta, "format"), *cell = tn_meta_get(&meta, "cell");
    const char *vocab = tn_meta_get(&meta, "vocab");
    int kind = cell ? cell_from_name(cell) : -1;
    int64_t V = vocab ? ex_utf8_decode((const unsigned char *)vocab, (int64_t)strlen(vocab),
                                       t->vocab, EX_CHAR_MAX_VOCAB)
                      : -1;
    bool sorted = V >= 1;
    for (int64_t v = 1; sorted && v < V; v++)
        sorted = t->vocab[v] > t->vocab[v - 1];
    if (!fmt || strcmp(fmt, "custom_cell 1") != 0 || kind < 0 || !sorted ||
        tn_meta_get_int(&meta, "hidden", &H) || tn_meta_get_int(&meta, "embed", &E) || H < 1 ||
        H > EX_CHAR_MAX_DIM || E < 1 || E > EX_CHAR_MAX_DIM) {
        fprintf(stderr,
                PROG ": %s: bad metadata: need format \"custom_cell 1\", cell peephole or mgu, "
                     "hidden and embed in 1..%d, a vocab of 1..%d sorted distinct characters\n",
                path, EX_CHAR_MAX_DIM, EX_CHAR_MAX_VOCAB);
        goto out;
    }
    t->V = (int)V;
    tn_rng r;
    tn_rng_seed(&r, 0);
    if (model_init(m, (cell_kind)kind, V, E, H, TN_F32, &r))
        goto out;
    tn_params *sets[1] = {&m->ps};
    if (tn_load(path, sets, 1, NULL) != TN_OK) {
        fprintf(stderr, PROG ": %s\n", tn_last_error());
        tn_params_free(&m->ps);
        goto out;
    }
    rc = 0;
out:
    tn_meta_free(&meta);
    return rc;
}

/* ---- options ---- */

typedef struct opts {
    const char *data, *checkpoint, *log, *loss_log, *curve, *prime, *cell, *encoding;
    int64_t hidden, embed, batch, seq, steps, eval_every, eval_chars, length, threads, warmup;
    double lr, clip, seconds;
    tn_sample_opts sample;
    uint64_t seed;
    bool cut_bptt, eager;
} opts;

enum { TRAIN = 1u << 0, SAMPLE = 1u << 1, EVAL = 1u << 2, GRADCHECK = 1u << 3, BENCH = 1u << 4 };

static int parse_opts(int argc, char **argv, opts *o, int *command)
{
    *o = (opts){.hidden = 128,
                .embed = 64,
                .batch = 32,
                .seq = 64,
                .steps = 1000,
                .eval_every = 200,
                .eval_chars = 20000,
                .length = 500,
                .warmup = 3,
                .lr = 2e-3,
                .clip = 1.0,
                .seconds = 5.0,
                .seed = 1337,
                .prime = "",
                .cell = "peephole",
                .encoding = "utf-8",
                .sample = {.temperature = 0.8, .top_k = 0, .top_p = 1}};
    const ex_opt table[] = {
        {"--cell", EX_CHOICE, &o->cell, "CELL",
         "the cell: peephole LSTM (Gers & Schmidhuber) or minimal gated unit (Zhou et al.)",
         .choices = "peephole|mgu", .commands = TRAIN | GRADCHECK | BENCH},
        {"--data", EX_STRING, &o->data, "FILE", "text to train on / to evaluate",
         .def = "train: generated English-like text; eval: required", .commands = TRAIN | EVAL},
        {"--encoding", EX_CHOICE, &o->encoding, "ENC", "encoding of --data",
         .choices = "utf-8|latin-1", .commands = TRAIN | EVAL},
        {"--hidden", EX_INT, &o->hidden, "H", "hidden units", .imin = 1, .imax = 16384,
         .commands = TRAIN | BENCH},
        {"--embed", EX_INT, &o->embed, "E", "embedding size", .imin = 1, .imax = 16384,
         .commands = TRAIN | BENCH},
        {"--batch", EX_INT, &o->batch, "B", "streams per batch", .imin = 1, .imax = 65536,
         .commands = TRAIN | BENCH},
        {"--seq", EX_INT, &o->seq, "T", "characters per window (truncated BPTT)", .imin = 1,
         .imax = 100000, .commands = TRAIN | BENCH},
        {"--steps", EX_INT, &o->steps, "N", "training steps", .imin = 0,
         .imax = INT64_C(1000000000000), .commands = TRAIN},
        {"--lr", EX_REAL, &o->lr, "X", "Adam learning rate", .dmin = 0, .dmin_open = true,
         .dmax = 10, .commands = TRAIN},
        {"--clip", EX_REAL, &o->clip, "X", "clip the global gradient norm to X (0: off)", .dmin = 0,
         .dmax = 1e6, .commands = TRAIN},
        {"--checkpoint", EX_STRING, &o->checkpoint, "PATH",
         "safetensors checkpoint to write (train) or read (sample, eval)",
         .def = "train: none; sample, eval: required", .commands = TRAIN | SAMPLE | EVAL},
        {"--eval-every", EX_INT, &o->eval_every, "N",
         "validation loss every N steps and after the last (0: after the last)", .imin = 0,
         .imax = INT64_C(1000000000000), .commands = TRAIN},
        {"--eval-chars", EX_INT, &o->eval_chars, "N",
         "characters of the validation split to evaluate", .imin = 2,
         .imax = INT64_C(1000000000000), .commands = TRAIN},
        EX_TRAIN_LOG_OPTS(&o->log, &o->loss_log, &o->curve, TRAIN),
        {"--prime", EX_STRING, &o->prime, "TEXT", "text to start sampling from (UTF-8)",
         .commands = SAMPLE},
        {"--length", EX_INT, &o->length, "N", "characters to sample", .imin = 0, .imax = 1000000000,
         .commands = SAMPLE},
        EX_SAMPLE_OPTS(&o->sample, SAMPLE),
        {"--seed", EX_UINT64, &o->seed, "S", "random seed (initial weights, sampling)",
         .commands = TRAIN | SAMPLE | GRADCHECK},
        {"--eager", EX_FLAG, &o->eager, NULL,
         "write the time loop out (one op per step and gate) instead of tn_scan's captured step",
         .commands = BENCH},
        {"--cut-bptt", EX_FLAG, &o->cut_bptt, NULL,
         "detach the state at every step (a negative control: the check must then fail)",
         .commands = GRADCHECK},
        {"--seconds", EX_REAL, &o->seconds, "S", "time the steps for about S seconds", .dmin = 0,
         .dmax = 86400, .commands = BENCH},
        {"--warmup", EX_INT, &o->warmup, "W", "untimed steps first", .imin = 0, .imax = 1000000,
         .commands = BENCH},
        {"--threads", EX_INT, &o->threads, "N", "threads for OpenMP loops and BLIS", .imin = 1,
         .imax = 1024, .def = EX_THREADS_DEFAULT},
    };
    static const char *const commands[] = {"train", "sample", "eval", "gradcheck", "bench", NULL};
    static const char *const command_help[] = {
        "train a model (and write --checkpoint)",
        "print text sampled from a checkpoint's model",
        "print a checkpoint's loss (nats/char) and perplexity on --data",
        "check the composed cell's gradients in float64 against central differences",
        "time training steps (Embedding(65, E) -> cell -> Linear(H, 65), Adam) on random ids",
    };
    const ex_spec spec = {
        .prog = PROG,
        .summary = "character language model with a cell composed from generic ops",
        .commands = commands,
        .command_help = command_help,
        .opts = table,
        .n_opts = (int)(sizeof table / sizeof table[0]),
        .notes = "Without --data, train uses about 200 KB of English-like text it generates.\n"
                 "  custom_cell train --cell peephole --steps 500 --checkpoint pl.safetensors\n"
                 "  custom_cell sample --checkpoint pl.safetensors --prime \"The \"\n"
                 "bench prints one last line of key=value pairs as bench/rnn_bench does.\n",
    };
    return ex_parse(&spec, argc, argv, command);
}

/* ---- commands ---- */

/* The training text (--data, or the generated text) into t. */
static int load_training_text(const opts *o, ex_text *t)
{
    char *bytes;
    size_t n;
    if (o->data) {
        if (ex_read_text(PROG, "--data", o->data, o->encoding, &bytes, &n))
            return -1;
    } else {
        int64_t gn;
        bytes = (char *)ex_generated_text(&gn);
        n = (size_t)gn;
        fprintf(stderr, PROG ": no --data given: training on %zu bytes of generated text\n", n);
    }
    int rc = ex_text_load(t, (unsigned char *)bytes, (int64_t)n, true, o->data ? o->data : "text");
    free(bytes);
    return rc;
}

/* A training run's state for the driver's hooks (train.h). */
typedef struct cell_run {
    cell_model *m;
    const ex_text *t;
    const opts *o;
    int64_t stream, pos; /* characters per stream, the window */
    tn_lm_state win;     /* the carried state for tn_lm_window (zeroed at the wrap) */
    state s, fin;        /* the carried state [B, H], the window's final (tape) */
    tn_tensor *x, *y;    /* the window's inputs [B, T] and targets [B * T] */
    const int32_t *val;  /* the validation split's first n_val characters */
    int64_t n_val;
} cell_run;

static tn_tensor *cell_forward(void *ctx, tn_tape *tp, int64_t step)
{
    (void)step;
    cell_run *r = ctx;
    /* never fails (cell_train's shapes fit); the driver reports tn_last_error() */
    if (tn_lm_window(&r->win, r->t->ids, r->stream, 0, &r->pos, r->x, r->y) != TN_OK)
        return NULL;
    return window_loss(tp, r->m, r->x, r->y, &r->s, &r->fin, TN_REDUCE_MEAN);
}

/* Truncated BPTT: the next window starts from this one's final state. */
static int cell_stepped(void *ctx)
{
    cell_run *r = ctx;
    if (tn_tensor_copy(r->s.h, r->fin.h) != TN_OK || tn_tensor_copy(r->s.c, r->fin.c) != TN_OK) {
        fprintf(stderr, "\n" PROG ": %s\n", tn_last_error());
        return -1;
    }
    r->pos += r->o->seq;
    return 0;
}

static int cell_evaluate(void *ctx, tn_tape *tp, double *values)
{
    (void)tp;
    cell_run *r = ctx;
    values[0] = model_eval(r->m, r->val, r->n_val);
    values[1] = exp(values[0]);
    return isnan(values[0]) ? -1 : 0;
}

static int cell_save(void *ctx, tn_tape *tp, int64_t step)
{
    (void)tp;
    cell_run *r = ctx;
    return save_cell_model(r->o->checkpoint, r->m, r->t, step);
}

static int cmd_train(const opts *o)
{
    if (ex_train_check_outputs(PROG, o->checkpoint, o->log, o->loss_log, o->curve))
        return 2;
    ex_text t = {0};
    if (load_training_text(o, &t))
        return 1;
    int64_t n_train = t.n * 9 / 10, B = o->batch, T = o->seq, stream = n_train / B;
    if (stream < T + 1) {
        fprintf(stderr,
                PROG ": the training split (%" PRId64 " characters) is too short for %" PRId64
                     " streams of %" PRId64 "+1 characters\n",
                n_train, B, T);
        free(t.ids);
        return 1;
    }
    cell_model m;
    tn_rng r;
    tn_rng_seed(&r, o->seed);
    if (model_init(&m, (cell_kind)cell_from_name(o->cell), t.V, o->embed, o->hidden, TN_F32, &r)) {
        free(t.ids);
        return 1;
    }
    tn_adam_opts ao = tn_adam_defaults();
    ao.lr = o->lr;
    tn_optim *opt = tn_optim_adam(&m.ps, &ao);
    tn_tape *tp = tn_tape_new();
    cell_run run = {.m = &m,
                    .t = &t,
                    .o = o,
                    .stream = stream,
                    .val = t.ids + n_train,
                    .n_val = t.n - n_train < o->eval_chars ? t.n - n_train : o->eval_chars};
    state_new(&run.s, B, m.H, TN_F32);
    run.win = (tn_lm_state){.h = run.s.h, .c = run.s.c};
    run.x = tn_tensor_new(TN_I32, 2, (int64_t[]){B, T});
    run.y = tn_tensor_new(TN_I32, 1, (int64_t[]){B * T});
    int rc = 1;
    if (!opt || !tp || !run.s.h || !run.s.c || !run.x || !run.y) {
        fprintf(stderr, PROG ": %s\n", tn_last_error()[0] ? tn_last_error() : "out of memory");
    } else {
        fprintf(stderr,
                PROG ": %s H=%" PRId64 " E=%" PRId64 " V=%" PRId64 " params=%" PRId64 "; B=%" PRId64
                     " T=%" PRId64 "; %" PRId64 " train / %" PRId64 " val chars; %d threads\n",
                cell_names[m.kind], m.H, m.E, m.V, tn_params_numel(&m.ps), B, T, n_train,
                t.n - n_train, tn_num_threads());
        static const ex_col cols[] = {{"val_loss", 4}, {"val_ppl", 3}};
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
                       .per_step = (double)(B * T),
                       .unit = "tok",
                       .ctx = &run,
                       .forward = cell_forward,
                       .stepped = cell_stepped,
                       .evaluate = run.n_val > 1 ? cell_evaluate : NULL,
                       .save = o->checkpoint ? cell_save : NULL,
                       .cols = cols,
                       .n_cols = 2};
        rc = ex_train_run(&tr);
    }
    tn_tape_free(tp);
    tn_tensor_free(run.x);
    tn_tensor_free(run.y);
    state_free(&run.s);
    tn_optim_free(opt);
    tn_params_free(&m.ps);
    free(t.ids);
    return rc;
}

static void print_cp(uint32_t cp)
{
    char enc[4];
    fwrite(enc, 1, (size_t)ex_utf8_encode(cp, enc), stdout);
}

static int cmd_sample(const opts *o)
{
    if (!o->checkpoint) {
        fprintf(stderr, PROG " sample: --checkpoint PATH is required\n");
        return 2;
    }
    if (ex_utf8_invalid_at((const unsigned char *)o->prime, strlen(o->prime)) >= 0) {
        fprintf(stderr, PROG ": --prime is not valid UTF-8\n");
        return 2;
    }
    cell_model m;
    ex_text *t = calloc(1, sizeof *t);
    if (load_cell_model(o->checkpoint, &m, t)) {
        free(t);
        return 1;
    }
    int rc = 0;
    if (ex_text_load(t, (const unsigned char *)o->prime, (int64_t)strlen(o->prime), false,
                     "--prime")) {
        rc = 1;
        goto out;
    }
    int nl = ex_text_index(t, '\n');
    int32_t next = nl >= 0 ? nl : 0; /* no prime: start from a newline if known */
    for (int64_t i = 0; i < t->n; i++)
        print_cp(t->vocab[t->ids[i]]);
    tn_rng r;
    tn_rng_seed(&r, o->seed);
    tn_tape *tp = tn_tape_new();
    tn_tape_set_grad(tp, false);
    state s;
    state_new(&s, 1, m.H, TN_F32);
    /* Feed the prime (or the start character), then each drawn character. */
    for (int64_t i = 0; i < (t->n ? t->n : 1) - 1 + o->length; i++) {
        tn_tape_reset(tp);
        tn_tensor *ids = tn_tape_tensor(tp, TN_I32, 2, (int64_t[]){1, 1});
        ((int32_t *)ids->data)[0] = i < t->n ? t->ids[i] : next;
        state fin = s;
        tn_tensor *logits = model_forward(tp, &m, ids, &fin.h, &fin.c);
        if (!logits || tn_tape_error(tp)) {
            fprintf(stderr, PROG ": sample: %s\n", tn_last_error());
            rc = 1;
            break;
        }
        tn_tensor_copy(s.h, fin.h);
        tn_tensor_copy(s.c, fin.c);
        if (i + 1 < t->n)
            continue; /* still reading the prime */
        if (tn_sample(logits, &o->sample, &r, &next) != TN_OK) {
            fprintf(stderr, PROG ": sample: %s\n", tn_last_error());
            rc = 1;
            break;
        }
        print_cp(t->vocab[next]);
    }
    printf("\n");
    state_free(&s);
    tn_tape_free(tp);
out:
    free(t->ids);
    free(t);
    tn_params_free(&m.ps);
    return rc;
}

static int cmd_eval(const opts *o)
{
    if (!o->checkpoint || !o->data) {
        fprintf(stderr, PROG " eval: --checkpoint PATH and --data FILE are required\n");
        return 2;
    }
    char *bytes;
    size_t n;
    if (ex_read_text(PROG, "--data", o->data, o->encoding, &bytes, &n))
        return 1;
    cell_model m;
    ex_text *t = calloc(1, sizeof *t);
    bool loaded = load_cell_model(o->checkpoint, &m, t) == 0;
    int rc = 0;
    if (loaded && ex_text_load(t, (unsigned char *)bytes, (int64_t)n, false, o->data) == 0) {
        double loss = model_eval(&m, t->ids, t->n);
        if (isnan(loss)) {
            fprintf(stderr, PROG " eval: %s: no loss (fewer than 2 characters?)\n", o->data);
            rc = 1;
        } else {
            printf("loss %.6f ppl %.6f\n", loss, exp(loss));
        }
    } else {
        rc = 1;
    }
    if (loaded)
        tn_params_free(&m.ps);
    free(t->ids);
    free(t);
    free(bytes);
    return rc;
}

/* ---- gradcheck ---- */

typedef struct gc_ctx {
    cell_model *m;
    tn_tensor *ids, *tgt; /* [T, B], [T*B] */
} gc_ctx;

/* inputs: the model's parameters (in place), then h0 and c0. */
static tn_tensor *gc_loss(tn_tape *tp, tn_tensor *const *inputs, void *ctx)
{
    gc_ctx *g = ctx;
    int np = g->m->ps.n;
    tn_tensor *h = inputs[np], *c = inputs[np + 1];
    return tn_cross_entropy(tp, model_forward(tp, g->m, g->ids, &h, &c), g->tgt, -1,
                            TN_REDUCE_MEAN);
}

static int cmd_gradcheck(const opts *o)
{
    /* Small and float64: V 7, E 3, H 5, B 2, T 6. */
    const int64_t V = 7, E = 3, H = 5, B = 2, T = 6;
    cell_model m;
    tn_rng r;
    tn_rng_seed(&r, o->seed);
    if (model_init(&m, (cell_kind)cell_from_name(o->cell), V, E, H, TN_F64, &r))
        return 1;
    m.cut_bptt = o->cut_bptt;
    tn_tensor *h0 = tn_tensor_new(TN_F64, 2, (int64_t[]){B, H});
    tn_tensor *c0 = tn_tensor_new(TN_F64, 2, (int64_t[]){B, H});
    tn_tensor_uniform(h0, &r, -0.5, 0.5);
    tn_tensor_uniform(c0, &r, -0.5, 0.5);
    tn_tensor_set_requires_grad(h0, true);
    tn_tensor_set_requires_grad(c0, true);
    gc_ctx g = {.m = &m,
                .ids = tn_tensor_new(TN_I32, 2, (int64_t[]){T, B}),
                .tgt = tn_tensor_new(TN_I32, 1, (int64_t[]){T * B})};
    for (int64_t k = 0; k < T * B; k++) {
        ((int32_t *)g.ids->data)[k] = (int32_t)(tn_rng_next(&r) % V);
        ((int32_t *)g.tgt->data)[k] = (int32_t)(tn_rng_next(&r) % V);
    }
    int n = m.ps.n + 2;
    tn_tensor **in = malloc((size_t)n * sizeof *in);
    for (int k = 0; k < m.ps.n; k++)
        in[k] = m.ps.items[k].t;
    in[n - 2] = h0;
    in[n - 1] = c0;
    /* mgu has no c: c0 is then checked to get a zero gradient. */
    tn_gradcheck_result res;
    tn_status st = tn_gradcheck(gc_loss, &g, n, in, 1e-6, &res);
    /* Tolerance 1e-6 relative (floor 1e-2, see gradcheck.h): in float64
     * with eps 1e-6 the central difference's truncation error is ~eps^2 =
     * 1e-12 and its rounding ~1e-10 absolute, so right gradients give
     * ~1e-10 / 1e-2 = 1e-8 (4.7e-8 and 4.2e-8 seen for the two cells);
     * a missing path (--cut-bptt: no gradient through time) gives 1e-2
     * and more. */
    const double tol = 1e-6;
    int rc = 0;
    if (st != TN_OK) {
        fprintf(stderr, PROG ": gradcheck: %s\n", tn_last_error());
        rc = 1;
    } else {
        const char *worst = res.worst_input < m.ps.n   ? m.ps.items[res.worst_input].name
                            : res.worst_input == n - 2 ? "h0"
                                                       : "c0";
        bool ok = res.max_rel_err <= tol;
        printf("gradcheck %s%s (float64, V=%" PRId64 " E=%" PRId64 " H=%" PRId64 " B=%" PRId64
               " T=%" PRId64 "): %" PRId64 " elements, max abs error %.3g, max relative error "
               "%.3g at %s[%" PRId64 "] (analytic %.9g, numeric %.9g): %s (tolerance %g)\n",
               cell_names[m.kind], o->cut_bptt ? " --cut-bptt" : "", V, E, H, B, T, res.n_checked,
               res.max_abs_err, res.max_rel_err, worst, res.worst_index, res.worst_analytic,
               res.worst_numeric, ok ? "ok" : "FAILED", tol);
        rc = ok ? 0 : 1;
    }
    free(in);
    tn_tensor_free(g.ids);
    tn_tensor_free(g.tgt);
    tn_tensor_free(h0);
    tn_tensor_free(c0);
    tn_params_free(&m.ps);
    return rc;
}

/* ---- bench ---- */

/* GFLOP/s of the best of 5 products of two 1024 x 1024 float32 matrices
 * through tn_matmul (BLIS underneath), after a warm-up. */
static double sgemm_peak(void)
{
    const int64_t n = 1024;
    tn_tensor *a = tn_tensor_full(TN_F32, 2, (int64_t[]){n, n}, 0.01);
    tn_tensor *b = tn_tensor_full(TN_F32, 2, (int64_t[]){n, n}, 0.02);
    tn_tape *tp = tn_tape_new();
    tn_tape_set_grad(tp, false);
    double best = INFINITY;
    for (int rep = 0; rep < 6 && a && b; rep++) {
        tn_tape_reset(tp);
        double t0 = ex_seconds();
        tn_matmul(tp, a, b);
        double dt = ex_seconds() - t0;
        if (rep > 0 && dt < best)
            best = dt;
    }
    tn_tape_free(tp);
    tn_tensor_free(a);
    tn_tensor_free(b);
    return 2.0 * (double)(n * n * n) / best / 1e9;
}

/* Training steps of the composed cell timed as bench/rnn_bench times the
 * fused layer: Embedding(65, E) -> cell -> Linear(H, 65) -> cross-entropy
 * (mean) -> backward -> clip 1.0 -> Adam (lr 1e-3), float32, fixed random
 * ids, every step from a zero state; warm-up, then --seconds of steps. */
static int cmd_bench(const opts *o)
{
    const int64_t V = 65, B = o->batch, T = o->seq, H = o->hidden, E = o->embed;
    cell_model m;
    tn_rng r;
    tn_rng_seed(&r, 1234);
    if (model_init(&m, (cell_kind)cell_from_name(o->cell), V, E, H, TN_F32, &r))
        return 1;
    m.eager = o->eager;
    tn_adam_opts ao = tn_adam_defaults();
    tn_optim *opt = tn_optim_adam(&m.ps, &ao);
    tn_tensor *x = tn_tensor_new(TN_I32, 2, (int64_t[]){B, T});
    tn_tensor *y = tn_tensor_new(TN_I32, 1, (int64_t[]){B * T});
    state zero;
    state_new(&zero, B, H, TN_F32);
    tn_tape *tp = tn_tape_new();
    for (int64_t k = 0; k < B * T; k++) {
        ((int32_t *)x->data)[k] = (int32_t)(tn_rng_next(&r) % V);
        ((int32_t *)y->data)[k] = (int32_t)(tn_rng_next(&r) % V);
    }
    char name[64];
    snprintf(name, sizeof name, "%s%s-h%" PRId64 "-b%" PRId64 "-t%" PRId64, cell_names[m.kind],
             m.eager ? "-eager" : "", H, B, T);
    fprintf(stderr,
            PROG " bench: %s: E=%" PRId64 " V=%" PRId64 " params=%" PRId64
                 "; %d threads, BLIS %s\n",
            name, E, V, tn_params_numel(&m.ps), tn_num_threads(), tn_blis_config());
    int64_t steps = 0;
    double t0 = 0, el = 0, first = NAN, loss_v = NAN;
    for (int64_t k = 0; opt; k++) {
        if (k == o->warmup)
            t0 = ex_seconds();
        tn_tape_reset(tp);
        tn_optim_zero_grad(opt);
        state fin;
        tn_tensor *loss = window_loss(tp, &m, x, y, &zero, &fin, TN_REDUCE_MEAN);
        if (!loss || tn_backward(tp, loss) != TN_OK || tn_clip_grad_norm(&m.ps, 1.0, NULL) ||
            tn_optim_step(opt) != TN_OK) {
            fprintf(stderr, PROG " bench: %s\n", tn_last_error());
            break;
        }
        loss_v = tn_tensor_get(loss, 0);
        first = k == 0 ? loss_v : first;
        if (k >= o->warmup) {
            steps++;
            el = ex_seconds() - t0;
            if (el >= o->seconds && steps >= 2)
                break;
        }
    }
    int rc = steps >= 2 ? 0 : 1;
    if (rc == 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        double sec = el / (double)steps;
        /* Counted as rnn_bench counts them: the products of forward and
         * backward (3 of 2 flops per multiply-add), 6*B*T*G*H*(E+H) for
         * the cell and 6*B*T*H*V for the head; the point-wise ops are
         * left out. */
        double flops = 6.0 * gates(m.kind) * (double)(B * T * H) * (double)(E + H) +
                       6.0 * (double)(B * T * H * V);
        double gf = flops / sec / 1e9, peak = sgemm_peak();
        fprintf(stderr,
                PROG " bench: loss %.4f (first warm-up step) -> %.4f after %" PRId64
                     " steps; arena %.1f MB\n",
                first, loss_v, o->warmup + steps, (double)tn_tape_arena_capacity(tp) / 1048576.0);
        printf("config=%s threads=%d ms_per_step=%.3f tokens_per_s=%.0f gflops=%.2f "
               "sgemm_peak_gflops=%.1f peak_pct=%.1f rss_mb=%.1f steps=%" PRId64
               " cell=%s H=%" PRId64 " B=%" PRId64 " T=%" PRId64 " L=1 blis=%s blis_arch=%d "
               "isa=%s\n",
               name, tn_num_threads(), 1e3 * sec, (double)(B * T) / sec, gf, peak,
               100.0 * gf / peak, (double)ru.ru_maxrss / 1024.0, steps, cell_names[m.kind], H, B, T,
               tn_blis_config(), (int)bli_arch_query_id(), tn_isa_name(tn_isa_active()));
    }
    tn_tape_free(tp);
    state_free(&zero);
    tn_tensor_free(x);
    tn_tensor_free(y);
    tn_optim_free(opt);
    tn_params_free(&m.ps);
    return rc;
}

int main(int argc, char **argv)
{
    opts o;
    int command, rc = parse_opts(argc, argv, &o, &command);
    if (rc != EX_OK)
        return rc == EX_DONE ? 0 : 2;
    if (ex_runtime(PROG, o.threads))
        return 1;
    switch (command) {
    case 0: return cmd_train(&o);
    case 1: return cmd_sample(&o);
    case 2: return cmd_eval(&o);
    case 3: return cmd_gradcheck(&o);
    default: return cmd_bench(&o);
    }
}
