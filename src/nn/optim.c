/* src/nn/optim.c - optimizers (PyTorch 1.13 update rules), learning-rate
 * schedules and gradient clipping over a tn_params set.
 *
 * Each update kernel is one element-wise loop over a parameter w, its
 * gradient g and its state tensors, all contiguous with the same shape,
 * written in the parameter's dtype T with the operations in PyTorch's order
 * (so float64 results agree to a few ulps). Scalar coefficients (bias
 * corrections, decayed rates) are computed in double, then rounded to T as
 * PyTorch does with a Python float scalar. */
#include "tensor/optim.h"

#include "../core/loops.h"

#include <stdio.h>
#include <string.h>
#include <tgmath.h>

/* Element loops (TN_PAR_FOR above TN_PAR_MIN elements) are threaded; each
 * element's update is independent, so results do not depend on the thread
 * count. */

#define OPT_MAX_STATE 3 /* state tensors per parameter */

struct tn_optim {
    tn_optim_kind kind;
    const tn_params *ps; /* borrowed */
    int n;               /* ps->n at creation */
    int nstate;          /* state tensors per parameter */
    int64_t step;        /* completed steps */
    double lr;
    bool skip_nonfinite; /* skip steps whose gradients are not all finite */
    int64_t skipped;     /* steps skipped so far */
    union {
        tn_sgd_opts sgd;
        tn_adagrad_opts adagrad;
        tn_rmsprop_opts rmsprop;
        tn_adam_opts adam;
    } opt;
    tn_params state; /* n * nstate tensors, parameter-major */
};

static const char *const kind_names[] = {"sgd", "adagrad", "rmsprop", "adam", "adamw"};

/* ---- defaults ---- */

tn_sgd_opts tn_sgd_defaults(void) { return (tn_sgd_opts){.lr = 1e-3}; }

tn_adagrad_opts tn_adagrad_defaults(void) { return (tn_adagrad_opts){.lr = 1e-2, .eps = 1e-10}; }

tn_rmsprop_opts tn_rmsprop_defaults(void)
{
    return (tn_rmsprop_opts){.lr = 1e-2, .alpha = 0.99, .eps = 1e-8};
}

tn_adam_opts tn_adam_defaults(void)
{
    return (tn_adam_opts){.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
}

tn_adam_opts tn_adamw_defaults(void)
{
    tn_adam_opts o = tn_adam_defaults();
    o.weight_decay = 1e-2;
    return o;
}

/* ---- creation ---- */

/* Finite and >= 0 (false for NaN and +inf: an infinite rate, decay or eps
 * only ever produces NaN parameters). */
static bool nonneg(double x) { return x >= 0 && isfinite(x); }

/* 0 <= x < 1. */
static bool unit(double x) { return x >= 0 && x < 1; }

/* New state tensor "<param>.<key>" like p, filled with value, appended to
 * o->state (whose items array was sized for every state tensor). */
static tn_status add_state(tn_optim *o, const char *fn, const tn_param *p, const char *key,
                           double value)
{
    tn_param *s = &o->state.items[o->state.n];
    int len = snprintf(s->name, sizeof s->name, "%s.%s", p->name, key);
    if (len < 0 || len >= TN_NAME_MAX)
        return tn_set_error(TN_ERR_ARG, "%s: state name too long: %s.%s", fn, p->name, key);
    s->t = tn_tensor_full(p->t->dtype, p->t->ndim, p->t->shape, value);
    if (!s->t)
        return tn_last_status() != TN_OK ? tn_last_status() : TN_ERR_MEMORY;
    s->t->name = s->name;
    o->state.n++;
    return TN_OK;
}

/* Check ps, allocate the optimizer and its state: keys[0..nkeys) per
 * parameter, each filled with init. o->opt must be set by the caller. */
static tn_optim *optim_new(const char *fn, tn_optim_kind kind, const tn_params *ps, double lr,
                           const char *const *keys, int nkeys, double init)
{
    if (!ps)
        return tn_set_error(TN_ERR_ARG, "%s: parameter set is NULL", fn), NULL;
    for (int i = 0; i < ps->n; i++) {
        const tn_tensor *t = ps->items[i].t;
        char sh[64];
        if (!t)
            return tn_set_error(TN_ERR_ARG, "%s: parameter %s is NULL", fn, ps->items[i].name),
                   NULL;
        if (t->dtype != TN_F32 && t->dtype != TN_F64)
            return tn_set_error(TN_ERR_DTYPE, "%s: parameter %s is %s, need f32 or f64", fn,
                                ps->items[i].name, tn_dtype_name(t->dtype)),
                   NULL;
        if (!tn_is_contiguous(t))
            return tn_set_error(TN_ERR_ARG, "%s: parameter %s %s is not contiguous", fn,
                                ps->items[i].name, tn_shape_str(t, sh, sizeof sh)),
                   NULL;
    }
    tn_optim *o = tn_alloc(sizeof *o);
    if (!o)
        return tn_set_error(TN_ERR_MEMORY, "%s: out of memory", fn), NULL;
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->ps = ps;
    o->n = ps->n;
    o->nstate = nkeys;
    o->lr = lr;
    tn_params_init(&o->state);
    int total = ps->n * nkeys;
    if (total > 0) {
        o->state.items = tn_alloc((size_t)total * sizeof *o->state.items);
        if (!o->state.items) {
            tn_free(o);
            return tn_set_error(TN_ERR_MEMORY, "%s: out of memory", fn), NULL;
        }
        memset(o->state.items, 0, (size_t)total * sizeof *o->state.items);
        o->state.cap = total;
    }
    for (int i = 0; i < ps->n; i++)
        for (int k = 0; k < nkeys; k++)
            if (add_state(o, fn, &ps->items[i], keys[k], init) != TN_OK) {
                tn_optim_free(o);
                return NULL;
            }
    return o;
}

tn_optim *tn_optim_sgd(const tn_params *ps, const tn_sgd_opts *opts)
{
    tn_sgd_opts op = opts ? *opts : tn_sgd_defaults();
    const char *fn = "tn_optim_sgd";
    if (!nonneg(op.lr) || !nonneg(op.momentum) || !nonneg(op.weight_decay) ||
        !(op.dampening == op.dampening))
        return tn_set_error(TN_ERR_ARG,
                            "%s: invalid option (lr %g, momentum %g, dampening %g, "
                            "weight_decay %g): lr, momentum and weight_decay must be finite "
                            "and >= 0",
                            fn, op.lr, op.momentum, op.dampening, op.weight_decay),
               NULL;
    if (op.nesterov && (op.momentum <= 0 || op.dampening != 0))
        return tn_set_error(TN_ERR_ARG,
                            "%s: Nesterov momentum requires a momentum and zero dampening "
                            "(momentum %g, dampening %g)",
                            fn, op.momentum, op.dampening),
               NULL;
    static const char *const keys[] = {"momentum_buffer"};
    tn_optim *o = optim_new(fn, TN_OPTIM_SGD, ps, op.lr, keys, op.momentum != 0 ? 1 : 0, 0.0);
    if (o)
        o->opt.sgd = op;
    return o;
}

tn_optim *tn_optim_adagrad(const tn_params *ps, const tn_adagrad_opts *opts)
{
    tn_adagrad_opts op = opts ? *opts : tn_adagrad_defaults();
    const char *fn = "tn_optim_adagrad";
    if (!nonneg(op.lr) || !nonneg(op.lr_decay) || !nonneg(op.weight_decay) ||
        !nonneg(op.initial_accumulator_value) || !nonneg(op.eps))
        return tn_set_error(TN_ERR_ARG,
                            "%s: invalid option (lr %g, lr_decay %g, weight_decay %g, "
                            "initial_accumulator_value %g, eps %g): all must be finite and "
                            ">= 0",
                            fn, op.lr, op.lr_decay, op.weight_decay, op.initial_accumulator_value,
                            op.eps),
               NULL;
    static const char *const keys[] = {"sum"};
    tn_optim *o = optim_new(fn, TN_OPTIM_ADAGRAD, ps, op.lr, keys, 1, op.initial_accumulator_value);
    if (o)
        o->opt.adagrad = op;
    return o;
}

tn_optim *tn_optim_rmsprop(const tn_params *ps, const tn_rmsprop_opts *opts)
{
    tn_rmsprop_opts op = opts ? *opts : tn_rmsprop_defaults();
    const char *fn = "tn_optim_rmsprop";
    if (!nonneg(op.lr) || !unit(op.alpha) || !nonneg(op.eps) || !nonneg(op.weight_decay) ||
        !nonneg(op.momentum))
        return tn_set_error(TN_ERR_ARG,
                            "%s: invalid option (lr %g, alpha %g, eps %g, weight_decay %g, "
                            "momentum %g): alpha must be in [0, 1), the others finite and >= 0",
                            fn, op.lr, op.alpha, op.eps, op.weight_decay, op.momentum),
               NULL;
    const char *keys[OPT_MAX_STATE];
    int nk = 0;
    keys[nk++] = "square_avg";
    if (op.momentum > 0)
        keys[nk++] = "momentum_buffer";
    if (op.centered)
        keys[nk++] = "grad_avg";
    tn_optim *o = optim_new(fn, TN_OPTIM_RMSPROP, ps, op.lr, keys, nk, 0.0);
    if (o)
        o->opt.rmsprop = op;
    return o;
}

static tn_optim *adam_new(const char *fn, tn_optim_kind kind, const tn_params *ps, tn_adam_opts op)
{
    if (!nonneg(op.lr) || !unit(op.beta1) || !unit(op.beta2) || !nonneg(op.eps) ||
        !nonneg(op.weight_decay))
        return tn_set_error(TN_ERR_ARG,
                            "%s: invalid option (lr %g, betas %g %g, eps %g, weight_decay "
                            "%g): betas must be in [0, 1), the others finite and >= 0",
                            fn, op.lr, op.beta1, op.beta2, op.eps, op.weight_decay),
               NULL;
    static const char *const keys[] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
    tn_optim *o = optim_new(fn, kind, ps, op.lr, keys, op.amsgrad ? 3 : 2, 0.0);
    if (o)
        o->opt.adam = op;
    return o;
}

tn_optim *tn_optim_adam(const tn_params *ps, const tn_adam_opts *opts)
{
    return adam_new("tn_optim_adam", TN_OPTIM_ADAM, ps, opts ? *opts : tn_adam_defaults());
}

tn_optim *tn_optim_adamw(const tn_params *ps, const tn_adam_opts *opts)
{
    return adam_new("tn_optim_adamw", TN_OPTIM_ADAMW, ps, opts ? *opts : tn_adamw_defaults());
}

void tn_optim_free(tn_optim *o)
{
    if (!o)
        return;
    tn_params_free(&o->state);
    tn_free(o);
}

/* ---- update kernels: w, g, state contiguous, same dtype; elements
 * off .. off + n - 1 (all of them, or one row of a sparse gradient) ---- */

/* SGD; b NULL without momentum; first: the buffer takes the gradient. */
static void sgd_update(const tn_sgd_opts *op, double lr, bool first, tn_tensor *p, tn_tensor *b,
                       int64_t off, int64_t n)
{
    TN_FOR_DTYPE(p->dtype, T, {
        T *w = (T *)p->data + off;
        const T *g = (const T *)p->grad + off;
        T *buf = b ? (T *)b->data + off : NULL;
        const T lr_ = (T)lr, wd = (T)op->weight_decay, mom = (T)op->momentum;
        const T damp = (T)(1 - op->dampening);
        const bool nest = op->nesterov, decay = op->weight_decay != 0;
        TN_PAR_FOR(n > TN_PAR_MIN, i, 0, n, {
            T d = g[i];
            if (decay)
                d = d + wd * w[i];
            if (buf) {
                buf[i] = first ? d : buf[i] * mom + damp * d;
                d = nest ? d + mom * buf[i] : buf[i];
            }
            w[i] = w[i] - lr_ * d;
        });
    });
}

/* Adagrad; s the sum of squares; clr the decayed rate of this step. */
static void adagrad_update(const tn_adagrad_opts *op, double clr, tn_tensor *p, tn_tensor *s,
                           int64_t off, int64_t n)
{
    TN_FOR_DTYPE(p->dtype, T, {
        T *w = (T *)p->data + off, *sum = (T *)s->data + off;
        const T *g = (const T *)p->grad + off;
        const T lr_ = (T)clr, wd = (T)op->weight_decay, eps = (T)op->eps;
        const bool decay = op->weight_decay != 0;
        TN_PAR_FOR(n > TN_PAR_MIN, i, 0, n, {
            T d = g[i];
            if (decay)
                d = d + wd * w[i];
            sum[i] = sum[i] + d * d;
            w[i] = w[i] - lr_ * d / (sqrt(sum[i]) + eps);
        });
    });
}

/* RMSprop; v square_avg, b momentum_buffer (or NULL), a grad_avg (or NULL). */
static void rmsprop_update(const tn_rmsprop_opts *op, double lr, tn_tensor *p, tn_tensor *v,
                           tn_tensor *b, tn_tensor *a)
{
    int64_t n = tn_numel(p);
    TN_FOR_DTYPE(p->dtype, T, {
        T *w = p->data, *sq = v->data;
        T *buf = b ? b->data : NULL, *ga = a ? a->data : NULL;
        const T *g = p->grad;
        const T lr_ = (T)lr, wd = (T)op->weight_decay, eps = (T)op->eps;
        const T alpha = (T)op->alpha, alpha1 = (T)(1 - op->alpha), mom = (T)op->momentum;
        const bool decay = op->weight_decay != 0;
        TN_PAR_FOR(n > TN_PAR_MIN, i, 0, n, {
            T d = g[i];
            if (decay)
                d = d + wd * w[i];
            sq[i] = sq[i] * alpha + alpha1 * d * d;
            T avg;
            if (ga) {
                ga[i] = ga[i] * alpha + alpha1 * d;
                avg = sqrt(sq[i] - ga[i] * ga[i]);
            } else {
                avg = sqrt(sq[i]);
            }
            avg = avg + eps;
            if (buf) {
                buf[i] = buf[i] * mom + d / avg;
                w[i] = w[i] - lr_ * buf[i];
            } else {
                w[i] = w[i] - lr_ * d / avg;
            }
        });
    });
}

/* Adam / AdamW (decoupled); m exp_avg, v exp_avg_sq, vm max_exp_avg_sq or
 * NULL; t the 1-based step; sparse: SparseAdam's form (rows of a sparse
 * gradient). */
static void adam_update(const tn_adam_opts *op, bool decoupled, double lr, int64_t t, tn_tensor *p,
                        tn_tensor *m, tn_tensor *v, tn_tensor *vm, int64_t off, int64_t n,
                        bool sparse)
{
    double bc1 = 1 - pow(op->beta1, (double)t), bc2 = 1 - pow(op->beta2, (double)t);
    /* Adam: w -= lr/bc1 m / (sqrt(v)/sqrt(bc2) + eps); SparseAdam (rows of a
     * sparse gradient): w -= lr sqrt(bc2)/bc1 m / (sqrt(v) + eps) */
    double step_size = sparse ? lr * sqrt(bc2) / bc1 : lr / bc1, bc2_sqrt = sparse ? 1 : sqrt(bc2);
    TN_FOR_DTYPE(p->dtype, T, {
        T *w = (T *)p->data + off, *ea = (T *)m->data + off, *eas = (T *)v->data + off;
        T *mx = vm ? (T *)vm->data + off : NULL;
        const T *g = (const T *)p->grad + off;
        const T b1 = (T)op->beta1, b1c = (T)(1 - op->beta1);
        const T b2 = (T)op->beta2, b2c = (T)(1 - op->beta2);
        const T eps = (T)op->eps, wd = (T)op->weight_decay;
        const T shrink = (T)(1 - lr * op->weight_decay);
        const T ss = (T)step_size, bcs = (T)bc2_sqrt;
        const bool l2 = !decoupled && op->weight_decay != 0;
        if (!decoupled && !l2 && !mx) { /* plain Adam: the same update, branch-free (it
                                          * vectorises; the general loop did not) */
            T *restrict wr = w, *restrict ear = ea, *restrict easr = eas;
            const T *restrict gr = g;
            TN_PAR_FOR(n > TN_PAR_MIN, i, 0, n, {
                T d = gr[i];
                T a = ear[i] * b1 + b1c * d, s = easr[i] * b2 + b2c * d * d;
                ear[i] = a;
                easr[i] = s;
                T denom = sqrt(s) / bcs + eps;
                wr[i] = wr[i] - ss * a / denom;
            });
        } else {
            TN_PAR_FOR(n > TN_PAR_MIN, i, 0, n, {
                T d = g[i];
                if (decoupled)
                    w[i] = w[i] * shrink;
                else if (l2)
                    d = d + wd * w[i];
                ea[i] = ea[i] * b1 + b1c * d;
                eas[i] = eas[i] * b2 + b2c * d * d;
                T s = eas[i];
                if (mx) {
                    mx[i] = mx[i] >= s ? mx[i] : s;
                    s = mx[i];
                }
                T denom = sqrt(s) / bcs + eps;
                w[i] = w[i] - ss * ea[i] / denom;
            });
        }
    });
}

static double sum_squares(const tn_tensor *t); /* clipping, below */

/* Has a gradient and is not frozen (requires_grad off): the parameters that
 * tn_optim_step updates and the clipping functions read. */
static bool trainable(const tn_tensor *p) { return p->grad && p->requires_grad; }

/* Whether every gradient element of o's parameters is finite (a sum of
 * squares in double is non-finite exactly then, for float gradients). */
static bool grads_finite(const tn_optim *o)
{
    for (int i = 0; i < o->n; i++) {
        const tn_tensor *p = o->ps->items[i].t;
        if (trainable(p) && !isfinite(sum_squares(p)))
            return false;
    }
    return true;
}

tn_status tn_optim_set_skip_nonfinite(tn_optim *o, bool on)
{
    if (!o)
        return tn_set_error(TN_ERR_ARG, "tn_optim_set_skip_nonfinite: NULL optimizer");
    o->skip_nonfinite = on;
    return TN_OK;
}

int64_t tn_optim_skipped(const tn_optim *o) { return o ? o->skipped : 0; }

/* Whether o updates a sparse gradient's rows only (tn_tensor_set_sparse_grad),
 * as PyTorch's optimizers for sparse gradients do: Adam and AdamW without
 * weight decay and amsgrad (SparseAdam's update), Adagrad without weight
 * decay (sparse Adagrad), SGD without momentum and weight decay (the dense
 * result). Any other setting updates every row. */
static bool row_updates(const tn_optim *o)
{
    switch (o->kind) {
    case TN_OPTIM_SGD: return o->opt.sgd.momentum == 0 && o->opt.sgd.weight_decay == 0;
    case TN_OPTIM_ADAGRAD: return o->opt.adagrad.weight_decay == 0;
    case TN_OPTIM_ADAM:
    case TN_OPTIM_ADAMW: return o->opt.adam.weight_decay == 0 && !o->opt.adam.amsgrad;
    default: return false;
    }
}

tn_status tn_optim_step(tn_optim *o)
{
    if (!o)
        return tn_set_error(TN_ERR_ARG, "tn_optim_step: optimizer is NULL");
    if (o->ps->n != o->n)
        return tn_set_error(TN_ERR_STATE,
                            "tn_optim_step: the parameter set changed from %d to %d "
                            "parameters since the %s optimizer was created",
                            o->n, o->ps->n, kind_names[o->kind]);
    if (o->skip_nonfinite && !grads_finite(o)) {
        o->skipped++;
        return TN_OK;
    }
    bool first = o->step == 0;
    int64_t t = ++o->step;
    for (int i = 0; i < o->n; i++) {
        tn_tensor *p = o->ps->items[i].t;
        tn_tensor *s[OPT_MAX_STATE] = {NULL, NULL, NULL};
        for (int k = 0; k < o->nstate; k++)
            s[k] = o->state.items[i * o->nstate + k].t;
        if (!trainable(p))
            continue;
        const int64_t *rows = NULL;
        int64_t nr = row_updates(o) ? tn_tensor_grad_rows(p, &rows) : -1;
        int64_t E = nr >= 0 ? p->shape[1] : tn_numel(p);
        for (int64_t r = 0; r < (nr >= 0 ? nr : 1); r++) {
            int64_t off = nr >= 0 ? rows[r] * E : 0;
            switch (o->kind) {
            case TN_OPTIM_SGD: sgd_update(&o->opt.sgd, o->lr, first, p, s[0], off, E); break;
            case TN_OPTIM_ADAGRAD: {
                double clr = o->lr / (1 + (double)(t - 1) * o->opt.adagrad.lr_decay);
                adagrad_update(&o->opt.adagrad, clr, p, s[0], off, E);
                break;
            }
            case TN_OPTIM_RMSPROP: {
                const tn_rmsprop_opts *op = &o->opt.rmsprop;
                int k = 1;
                tn_tensor *b = op->momentum > 0 ? s[k++] : NULL;
                tn_tensor *a = op->centered ? s[k++] : NULL;
                rmsprop_update(op, o->lr, p, s[0], b, a);
                break;
            }
            case TN_OPTIM_ADAM:
            case TN_OPTIM_ADAMW:
                adam_update(&o->opt.adam, o->kind == TN_OPTIM_ADAMW, o->lr, t, p, s[0], s[1], s[2],
                            off, E, nr >= 0);
                break;
            }
        }
    }
    return TN_OK;
}

void tn_optim_zero_grad(tn_optim *o)
{
    if (!o)
        return;
    for (int i = 0; i < o->ps->n; i++)
        tn_tensor_zero_grad(o->ps->items[i].t);
}

tn_status tn_optim_set_lr(tn_optim *o, double lr)
{
    if (!o)
        return tn_set_error(TN_ERR_ARG, "tn_optim_set_lr: NULL optimizer");
    if (!nonneg(lr))
        return tn_set_error(TN_ERR_ARG,
                            "tn_optim_set_lr: lr %g must be finite and >= 0 (%s "
                            "keeps lr %g)",
                            lr, kind_names[o->kind], o->lr);
    o->lr = lr;
    /* keep the copied options in step (they are reported nowhere else) */
    switch (o->kind) {
    case TN_OPTIM_SGD: o->opt.sgd.lr = lr; break;
    case TN_OPTIM_ADAGRAD: o->opt.adagrad.lr = lr; break;
    case TN_OPTIM_RMSPROP: o->opt.rmsprop.lr = lr; break;
    case TN_OPTIM_ADAM:
    case TN_OPTIM_ADAMW: o->opt.adam.lr = lr; break;
    }
    return TN_OK;
}

double tn_optim_get_lr(const tn_optim *o) { return o ? o->lr : 0.0; }

int64_t tn_optim_get_step(const tn_optim *o) { return o ? o->step : 0; }

tn_status tn_optim_set_step(tn_optim *o, int64_t step)
{
    if (!o || step < 0)
        return tn_set_error(TN_ERR_ARG, "tn_optim_set_step: %s",
                            o ? "step must be >= 0" : "NULL optimizer");
    o->step = step;
    return TN_OK;
}

tn_optim_kind tn_optim_get_kind(const tn_optim *o) { return o ? o->kind : TN_OPTIM_SGD; }

const char *tn_optim_name(const tn_optim *o) { return o ? kind_names[o->kind] : "(null)"; }

tn_params *tn_optim_state(tn_optim *o) { return o ? &o->state : NULL; }

/* ---- learning-rate schedules ---- */

static const double pi = 3.14159265358979323846;

double tn_lr_step_decay(double base_lr, int64_t step, int64_t step_size, double gamma)
{
    if (step < 0)
        step = 0;
    if (step_size < 1)
        step_size = 1;
    return base_lr * pow(gamma, (double)(step / step_size));
}

double tn_lr_cosine(double base_lr, int64_t step, int64_t t_max, double eta_min)
{
    if (step < 0)
        step = 0;
    if (t_max < 1)
        t_max = 1;
    return eta_min + (base_lr - eta_min) * (1 + cos((double)step * pi / (double)t_max)) / 2;
}

double tn_lr_warmup(double base_lr, int64_t step, int64_t warmup)
{
    if (step < 0)
        step = 0;
    if (warmup <= 1 || step >= warmup)
        return base_lr;
    /* LinearLR(start_factor = 1/W, total_iters = W - 1), in its order */
    double start = 1.0 / (double)warmup;
    return base_lr * (start + (1.0 - start) * (double)step / (double)(warmup - 1));
}

double tn_lr_warmup_cosine(double base_lr, int64_t step, int64_t warmup, int64_t total,
                           double eta_min)
{
    if (step < 0)
        step = 0;
    if (warmup < 0)
        warmup = 0;
    if (step < warmup)
        return tn_lr_warmup(base_lr, step, warmup);
    if (step >= total)
        return eta_min;
    return tn_lr_cosine(base_lr, step - warmup, total - warmup, eta_min);
}

double tn_lr_at(const tn_lr_schedule *s, int64_t step)
{
    if (!s)
        return 0.0;
    if (step < 0)
        step = 0;
    if (s->kind == TN_LR_COSINE)
        return tn_lr_warmup_cosine(s->base_lr, step, s->warmup, s->total, s->eta_min);
    if (step < s->warmup)
        return tn_lr_warmup(s->base_lr, step, s->warmup);
    int64_t k = s->warmup > 0 ? step - s->warmup : step;
    if (s->kind == TN_LR_STEP)
        return tn_lr_step_decay(s->base_lr, k, s->step_size, s->gamma);
    return s->base_lr;
}

/* ---- gradient clipping ---- */

/* Sum of squares of the gradient g [n] contiguous, in double. The sum runs
 * over OPT_BLOCKS fixed blocks (threads share the blocks) whose partial sums
 * (each of OPT_LANES interleaved sums) are added in order, so the result
 * does not depend on the thread count. */
#define OPT_BLOCKS 64
#define OPT_LANES  8
static double sum_squares_range(const tn_tensor *t, int64_t off, int64_t n)
{
    double part[OPT_BLOCKS];
    TN_FOR_DTYPE(t->dtype, T, {
        const T *g = (const T *)t->grad + off;
        TN_PAR_FOR(n > TN_PAR_MIN, b, 0, OPT_BLOCKS, {
            /* OPT_LANES sums, each of every OPT_LANES-th value, so that the
             * loop vectorises without reordering a sum; added in lane order */
            double lane[OPT_LANES] = {0}, s = 0;
            int64_t i = n * b / OPT_BLOCKS, e = n * (b + 1) / OPT_BLOCKS;
            for (; i + OPT_LANES <= e; i += OPT_LANES)
                for (int l = 0; l < OPT_LANES; l++)
                    lane[l] += (double)g[i + l] * (double)g[i + l];
            for (; i < e; i++)
                s += (double)g[i] * (double)g[i];
            for (int l = 0; l < OPT_LANES; l++)
                s += lane[l];
            part[b] = s;
        });
    });
    double s = 0;
    for (int b = 0; b < OPT_BLOCKS; b++)
        s += part[b];
    return s;
}

/* Of a sparse gradient only the listed rows, in list order (the others are
 * 0). */
static double sum_squares(const tn_tensor *t)
{
    const int64_t *rows;
    int64_t nr = tn_tensor_grad_rows(t, &rows);
    if (nr < 0)
        return sum_squares_range(t, 0, tn_numel(t));
    double s = 0;
    for (int64_t r = 0; r < nr; r++)
        s += sum_squares_range(t, rows[r] * t->shape[1], t->shape[1]);
    return s;
}

/* g *= c over elements off .. off + n - 1. */
static void scale_range(tn_tensor *t, double c, int64_t off, int64_t n)
{
    TN_FOR_DTYPE(t->dtype, T, {
        T *g = (T *)t->grad + off;
        const T c_ = (T)c;
        TN_PAR_FOR(n > TN_PAR_MIN, i, 0, n, { g[i] = g[i] * c_; });
    });
}

/* g [n] contiguous *= c (of a sparse gradient the listed rows). */
static void scale_grad(tn_tensor *t, double c)
{
    const int64_t *rows;
    int64_t nr = tn_tensor_grad_rows(t, &rows);
    if (nr < 0)
        scale_range(t, c, 0, tn_numel(t));
    for (int64_t r = 0; r < nr; r++)
        scale_range(t, c, rows[r] * t->shape[1], t->shape[1]);
}

/* Trainable and contiguous (tensors a tn_params set creates always are). */
static bool clippable(const tn_tensor *t)
{
    return t && trainable(t) && (t->dtype == TN_F32 || t->dtype == TN_F64) && tn_is_contiguous(t);
}

tn_status tn_clip_grad_norm(const tn_params *ps, double max_norm, double *norm_out)
{
    if (!ps || !(max_norm >= 0))
        return tn_set_error(TN_ERR_ARG, "tn_clip_grad_norm: %s",
                            ps ? "max_norm must be >= 0" : "parameter set is NULL");
    double total = 0;
    for (int i = 0; i < ps->n; i++)
        if (clippable(ps->items[i].t))
            total += sum_squares(ps->items[i].t);
    double norm = sqrt(total);
    if (norm_out)
        *norm_out = norm;
    if (!isfinite(norm)) {
        const char *bad = "?";
        for (int i = 0; i < ps->n; i++)
            if (clippable(ps->items[i].t) && !isfinite(sum_squares(ps->items[i].t))) {
                bad = ps->items[i].name;
                break;
            }
        return tn_set_error(TN_ERR_NUMERIC,
                            "tn_clip_grad_norm: gradient norm is %g (first non-finite "
                            "gradient: '%s'); gradients left unchanged",
                            norm, bad);
    }
    double c = max_norm / (norm + 1e-6);
    if (c < 1)
        for (int i = 0; i < ps->n; i++)
            if (clippable(ps->items[i].t))
                scale_grad(ps->items[i].t, c);
    return TN_OK;
}

tn_status tn_clip_grad_value(const tn_params *ps, double clip_value)
{
    if (!ps)
        return tn_set_error(TN_ERR_ARG, "tn_clip_grad_value: parameter set is NULL");
    if (!(clip_value >= 0))
        return tn_set_error(TN_ERR_ARG, "tn_clip_grad_value: clip_value %g must be >= 0",
                            clip_value);
    for (int i = 0; i < ps->n; i++) {
        tn_tensor *t = ps->items[i].t;
        if (!clippable(t))
            continue;
        int64_t n = tn_numel(t);
        TN_FOR_DTYPE(t->dtype, T, {
            T *g = t->grad;
            const T hi = (T)clip_value, lo = -hi;
            TN_PAR_FOR(n > TN_PAR_MIN, i, 0, n, { g[i] = g[i] < lo ? lo : g[i] > hi ? hi : g[i]; });
        });
    }
    return TN_OK;
}
