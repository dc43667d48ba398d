/** @file
 * tensor/optim.h - optimizers, learning-rate schedules, gradient clipping,
 * initializers. Everything iterates a tn_params set (tensor/nn.h).
 *
 * Optimizers follow PyTorch 1.13's update rules, defaults and order of
 * floating-point operations (torch.optim.SGD, Adagrad, RMSprop, Adam,
 * AdamW, single-tensor code path), so a float64 run reproduces PyTorch's
 * parameters to within a few rounding errors. A training step is
 *
 *     tn_optim_zero_grad(opt);            // or tn_params_zero_grad
 *     ... forward, tn_backward ...
 *     tn_clip_grad_norm(&ps, 1.0, NULL);  // optional
 *     tn_optim_set_lr(opt, tn_lr_at(&sched, tn_optim_get_step(opt)));
 *     tn_optim_step(opt);
 *
 * The optimizer state (momentum buffers, moment estimates) is a tn_params
 * set owned by the optimizer, named "<parameter name>.<PyTorch state key>"
 * (e.g. "rnn.weight_ih_l0.exp_avg"), plus one step counter, so a checkpoint
 * saves and restores it by name. All state is allocated when the optimizer
 * is created; tn_optim_step allocates nothing.
 */
#ifndef TENSOR_OPTIM_H
#define TENSOR_OPTIM_H

#include "tensor/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- optimizers ----------------------------------------------------------- */

typedef struct tn_optim tn_optim;

typedef enum tn_optim_kind {
    TN_OPTIM_SGD = 0,
    TN_OPTIM_ADAGRAD,
    TN_OPTIM_RMSPROP,
    TN_OPTIM_ADAM,
    TN_OPTIM_ADAMW,
} tn_optim_kind;

/* SGD. With g the gradient, w the parameter, b the momentum buffer:
 *   g += weight_decay * w
 *   b  = g (first step) or momentum * b + (1 - dampening) * g  [momentum != 0]
 *   g  = nesterov ? g + momentum * b : b                         [momentum != 0]
 *   w -= lr * g
 * State: "<name>.momentum_buffer" when momentum != 0. */
typedef struct tn_sgd_opts {
    double lr;           /* default 1e-3 (PyTorch 1.13 has no default; 2.x uses 1e-3) */
    double momentum;     /* default 0 */
    double dampening;    /* default 0 */
    double weight_decay; /* default 0 (L2 added to the gradient) */
    bool nesterov;       /* default false; needs momentum > 0 and dampening 0 */
} tn_sgd_opts;

/* Adagrad. With s the accumulated squares and t the step (1-based):
 *   g += weight_decay * w;  s += g * g
 *   w -= lr / (1 + (t - 1) * lr_decay) * (g / (sqrt(s) + eps))
 * State: "<name>.sum", starting at initial_accumulator_value. */
typedef struct tn_adagrad_opts {
    double lr;                        /* default 1e-2 */
    double lr_decay;                  /* default 0 */
    double weight_decay;              /* default 0 */
    double initial_accumulator_value; /* default 0 */
    double eps;                       /* default 1e-10 */
} tn_adagrad_opts;

/* RMSprop. With v the square average, a the gradient average, b the buffer:
 *   g += weight_decay * w;  v = alpha * v + (1 - alpha) * g * g
 *   centered: a = alpha * a + (1 - alpha) * g; d = sqrt(v - a * a) + eps
 *   else:     d = sqrt(v) + eps
 *   momentum > 0: b = momentum * b + g / d; w -= lr * b
 *   else:         w -= lr * (g / d)
 * State: "<name>.square_avg", "<name>.momentum_buffer" (momentum > 0),
 * "<name>.grad_avg" (centered), in that order. */
typedef struct tn_rmsprop_opts {
    double lr;           /* default 1e-2 */
    double alpha;        /* default 0.99 */
    double eps;          /* default 1e-8 */
    double weight_decay; /* default 0 */
    double momentum;     /* default 0 */
    bool centered;       /* default false */
} tn_rmsprop_opts;

/* Adam and AdamW. With t the step (1-based), m, v the moments:
 *   Adam:  g += weight_decay * w          (L2 in the gradient)
 *   AdamW: w *= 1 - lr * weight_decay     (decoupled, before the update)
 *   m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g * g
 *   amsgrad: vmax = max(vmax, v), used in place of v below
 *   w -= lr / (1 - beta1^t) * (m / (sqrt(v) / sqrt(1 - beta2^t) + eps))
 * State: "<name>.exp_avg", "<name>.exp_avg_sq", "<name>.max_exp_avg_sq"
 * (amsgrad only), in that order. */
typedef struct tn_adam_opts {
    double lr;           /* default 1e-3 */
    double beta1, beta2; /* default 0.9, 0.999 */
    double eps;          /* default 1e-8 */
    double weight_decay; /* default 0 for Adam, 1e-2 for AdamW */
    bool amsgrad;        /* default false */
} tn_adam_opts;

/** @{ */
/** PyTorch's defaults, as listed above. Adjust fields, then pass a pointer. */
TN_API tn_sgd_opts tn_sgd_defaults(void);
TN_API tn_adagrad_opts tn_adagrad_defaults(void);
TN_API tn_rmsprop_opts tn_rmsprop_defaults(void);
TN_API tn_adam_opts tn_adam_defaults(void);
TN_API tn_adam_opts tn_adamw_defaults(void);
/** @} */

/** @{ */
/** Create an optimizer over every parameter of ps (opts NULL: the defaults).
 * The options are copied. ps is borrowed: it and its tensors must outlive
 * the optimizer, and the set must not gain or lose parameters meanwhile
 * (tn_optim_step checks the count). Every parameter must be a contiguous
 * F32 or F64 tensor; state tensors get its dtype and shape and start at
 * zero (Adagrad: initial_accumulator_value). Invalid options (negative or
 * non-finite lr, eps, momentum or weight decay, betas or alpha outside
 * [0, 1), Nesterov without momentum or with dampening) are rejected like
 * PyTorch does (and, unlike PyTorch, infinite values too).
 * Returns a new optimizer the caller frees with tn_optim_free, or NULL with
 * tn_last_error() naming the function and the problem. */
TN_API tn_optim *tn_optim_sgd(const tn_params *ps, const tn_sgd_opts *opts);
TN_API tn_optim *tn_optim_adagrad(const tn_params *ps, const tn_adagrad_opts *opts);
TN_API tn_optim *tn_optim_rmsprop(const tn_params *ps, const tn_rmsprop_opts *opts);
TN_API tn_optim *tn_optim_adam(const tn_params *ps, const tn_adam_opts *opts);
TN_API tn_optim *tn_optim_adamw(const tn_params *ps, const tn_adam_opts *opts);
/** @} */

/** Free the optimizer and its state tensors (not the parameters). NULL is a
 * no-op. Pointers from tn_optim_state become invalid. */
TN_API void tn_optim_free(tn_optim *o);

/** One update of every parameter from its gradient, in place (parameter data
 * and state change; gradients are read, not modified). The step counter is
 * incremented first, so Adam's first bias correction uses t = 1. Parameters
 * whose grad is NULL are skipped (as PyTorch skips grad None). SGD's
 * momentum buffer is set to the gradient when the counter was 0 before the
 * call. Frozen parameters (requires_grad turned off with
 * tn_tensor_set_requires_grad(t, false), e.g. a fixed pretrained embedding)
 * are skipped the same way: no update, no weight decay, their state stays
 * as it was; turning requires_grad back on resumes from that state.
 * Large parameters are updated by OpenMP threads; the result does not
 * depend on the thread count. Allocates nothing. Returns TN_OK, or
 * TN_ERR_STATE when the parameter set changed size since creation (nothing
 * is updated then), TN_ERR_ARG for NULL.
 * With skipping on (tn_optim_set_skip_nonfinite), a step whose gradients
 * hold a NaN or an infinity changes nothing (parameters, state and the step
 * counter stay as they were), is counted (tn_optim_skipped) and returns
 * TN_OK: the loss-scaling idiom. Off by default: non-finite gradients then
 * poison the parameters and state, so check tn_clip_grad_norm's status
 * (or the loss) before stepping. */
TN_API tn_status tn_optim_step(tn_optim *o);

/** Skip steps with non-finite gradients (on) or not (off, the default).
 * Checking costs one pass over the gradients per step. Returns TN_OK, or
 * TN_ERR_ARG for a NULL optimizer. */
TN_API tn_status tn_optim_set_skip_nonfinite(tn_optim *o, bool on);
/** Number of steps skipped so far (0 for NULL). */
TN_API int64_t tn_optim_skipped(const tn_optim *o);

/** Zero the gradient of every parameter (tn_tensor_zero_grad). NULL: no-op. */
TN_API void tn_optim_zero_grad(tn_optim *o);

/** @{ */
/** Learning rate used by the next tn_optim_step (a schedule sets it before
 * each step). set_lr refuses NULL and negative, infinite or NaN values:
 * TN_ERR_ARG, the rate unchanged. get_lr returns 0 for NULL. */
TN_API tn_status tn_optim_set_lr(tn_optim *o, double lr);
TN_API double tn_optim_get_lr(const tn_optim *o);
/** @} */

/** @{ */
/** Number of completed steps (0 after creation). set_step is for restoring a
 * checkpoint together with the state tensors; the next step uses step + 1.
 * set_step returns TN_OK, or TN_ERR_ARG (nothing changed) for a NULL
 * optimizer or a negative step; get_step returns 0 for NULL. */
TN_API int64_t tn_optim_get_step(const tn_optim *o);
TN_API tn_status tn_optim_set_step(tn_optim *o, int64_t step);
/** @} */

/** @{ */
/** The optimizer's kind, and its name: "sgd", "adagrad", "rmsprop", "adam",
 * "adamw" (a static string). */
TN_API tn_optim_kind tn_optim_get_kind(const tn_optim *o);
TN_API const char *tn_optim_name(const tn_optim *o);
/** @} */

/** The state tensors, owned by the optimizer and valid until tn_optim_free
 * (NULL for o NULL); what tn_save writes and tn_load fills:
 * for parameter i (in ps order) its state tensors in the order documented
 * with each optimizer's options, named "<parameter name>.<key>". The set may
 * be empty (plain SGD). A checkpoint loader may overwrite the tensors'
 * values in place (tn_tensor_copy) but must not free them, replace them or
 * change the set. The state tensors have no gradient. */
TN_API tn_params *tn_optim_state(tn_optim *o);

/* ---- learning-rate schedules ------------------------------------------------ */

/* Pure functions of step = the number of steps already taken (0 for the
 * first step), i.e. PyTorch's scheduler last_epoch when the scheduler is
 * stepped after every optimizer step. Negative steps count as 0. */

/** StepLR: base_lr * gamma^floor(step / step_size) (step_size < 1 counts as 1). */
TN_API double tn_lr_step_decay(double base_lr, int64_t step, int64_t step_size, double gamma);
/** CosineAnnealingLR, PyTorch's closed form:
 *   eta_min + (base_lr - eta_min) * (1 + cos(pi * step / t_max)) / 2
 * (t_max < 1 counts as 1). As in PyTorch, past t_max the rate rises again
 * (the cosine is periodic with period 2 t_max); it is not clamped. */
TN_API double tn_lr_cosine(double base_lr, int64_t step, int64_t t_max, double eta_min);
/** Linear warmup: base_lr * (step + 1) / warmup for step < warmup, then
 * base_lr. Equals PyTorch's LinearLR(start_factor = 1 / warmup,
 * total_iters = warmup - 1). warmup <= 1: always base_lr. */
TN_API double tn_lr_warmup(double base_lr, int64_t step, int64_t warmup);
/** Linear warmup for `warmup` steps, then cosine annealing from base_lr to
 * eta_min over the remaining total - warmup steps: for step >= warmup,
 * tn_lr_cosine(base_lr, step - warmup, total - warmup, eta_min), and
 * eta_min from step >= total on (clamped, unlike plain cosine).
 * PyTorch: SequentialLR([LinearLR, CosineAnnealingLR], [warmup]) up to total. */
TN_API double tn_lr_warmup_cosine(double base_lr, int64_t step, int64_t warmup, int64_t total,
                                  double eta_min);

typedef enum tn_lr_kind {
    TN_LR_CONSTANT = 0, /* base_lr (after the warmup, if any) */
    TN_LR_STEP,         /* tn_lr_step_decay after the warmup */
    TN_LR_COSINE,       /* tn_lr_warmup_cosine(..., warmup, total, eta_min) */
} tn_lr_kind;

/* A schedule as data (e.g. parsed from a command line). */
typedef struct tn_lr_schedule {
    tn_lr_kind kind;
    double base_lr;
    int64_t warmup;    /* linear warmup steps (0: none) */
    int64_t step_size; /* TN_LR_STEP: decay every step_size steps after warmup */
    double gamma;      /* TN_LR_STEP: decay factor */
    int64_t total;     /* TN_LR_COSINE: total steps including the warmup */
    double eta_min;    /* TN_LR_COSINE: final rate */
} tn_lr_schedule;

/** Rate for the given step: warmup (tn_lr_warmup) for step < warmup, then
 * the kind's schedule evaluated at step - warmup (TN_LR_COSINE: see
 * tn_lr_warmup_cosine). s NULL: returns 0. */
TN_API double tn_lr_at(const tn_lr_schedule *s, int64_t step);

/* ---- gradient clipping -------------------------------------------------------- */

/** torch.nn.utils.clip_grad_norm_ (norm_type 2): the total L2 norm of every
 * gradient of ps taken together (accumulated in double) goes to *norm_out
 * (may be NULL); when c = max_norm / (norm + 1e-6) < 1, every gradient is
 * multiplied by c in place (so the clipped norm is just under max_norm).
 * Parameters without a grad and frozen parameters (requires_grad off) are
 * skipped. Returns TN_OK; TN_ERR_NUMERIC (naming the first non-finite
 * gradient) when the norm is not finite: the gradients are left unchanged
 * (PyTorch would multiply them by NaN) and *norm_out still gets the norm,
 * so a training loop can stop on divergence; TN_ERR_ARG when ps is NULL
 * or max_norm < 0 or NaN: nothing changes, *norm_out included. */
TN_API tn_status tn_clip_grad_norm(const tn_params *ps, double max_norm, double *norm_out);

/** torch.nn.utils.clip_grad_value_: clamp every gradient element of the
 * trainable parameters (as tn_clip_grad_norm) to [-clip_value, clip_value]
 * in place (NaN stays NaN). Returns TN_OK, or
 * TN_ERR_ARG for NULL or clip_value < 0 / NaN (nothing changes). */
TN_API tn_status tn_clip_grad_value(const tn_params *ps, double clip_value);

/* ---- initializers (torch.nn.init) ------------------------------------------- */

/* Each fills t's data in place (any F32/F64 tensor, views included; the
 * gradient is not touched) with values drawn from r, which advances. The
 * streams differ from PyTorch's (different generator); distributions,
 * bounds and structure are PyTorch's. They return TN_OK, or TN_ERR_ARG
 * (NULL tensor or rng, bad range), TN_ERR_DTYPE (I32 tensor), TN_ERR_SHAPE
 * (fewer than 2 dimensions where fans are needed), TN_ERR_MEMORY; t is
 * unchanged on error. */

/** Fans as torch.nn.init._calculate_fan_in_and_fan_out: for shape
 * [out, in, k...], fan_in = in * prod(k), fan_out = out * prod(k).
 * Needs ndim >= 2. */
TN_API tn_status tn_init_fans(const tn_tensor *t, int64_t *fan_in, int64_t *fan_out);
/** torch.nn.init.calculate_gain: "linear", "conv1d".."conv3d", "sigmoid": 1;
 * "tanh": 5/3; "relu": sqrt(2); "leaky_relu": sqrt(2 / (1 + param^2))
 * (param < 0 means PyTorch's default slope 0.01); "selu": 3/4, into
 * *gain_out. Returns TN_OK, or TN_ERR_ARG (*gain_out unchanged) for an
 * unknown name or a NULL argument. */
TN_API tn_status tn_init_gain(const char *nonlinearity, double param, double *gain_out);

/** All zeros. */
TN_API tn_status tn_init_zeros(tn_tensor *t);
/** U(lo, hi); needs lo <= hi. */
TN_API tn_status tn_init_uniform(tn_tensor *t, tn_rng *r, double lo, double hi);
/** N(mean, std^2); needs std >= 0. */
TN_API tn_status tn_init_normal(tn_tensor *t, tn_rng *r, double mean, double std);
/** Glorot: U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)). */
TN_API tn_status tn_init_xavier_uniform(tn_tensor *t, tn_rng *r, double gain);
/** Glorot: N(0, s^2), s = gain * sqrt(2 / (fan_in + fan_out)). */
TN_API tn_status tn_init_xavier_normal(tn_tensor *t, tn_rng *r, double gain);
/** He, mode fan_in, nonlinearity leaky_relu with negative slope a:
 * U(-b, b), b = sqrt(2 / (1 + a^2)) * sqrt(3 / fan_in). a = 0 is the ReLU
 * rule; a = sqrt(5) gives PyTorch's nn.Linear default b = 1 / sqrt(fan_in). */
TN_API tn_status tn_init_kaiming_uniform(tn_tensor *t, tn_rng *r, double a);
/** He normal: N(0, s^2), s = sqrt(2 / (1 + a^2)) / sqrt(fan_in). */
TN_API tn_status tn_init_kaiming_normal(tn_tensor *t, tn_rng *r, double a);
/** (Semi-)orthogonal: t viewed as [rows = shape[0], cols = numel / rows] is
 * gain * Q, where Q comes from the QR factorisation (with R's diagonal made
 * positive, as PyTorch's sign correction does) of a standard normal matrix:
 * rows >= cols gives orthonormal columns (W^T W = gain^2 I), rows < cols
 * orthonormal rows (W W^T = gain^2 I). Computed in double by Gram-Schmidt
 * with reorthogonalisation; allocates rows * cols doubles of scratch. */
TN_API tn_status tn_init_orthogonal(tn_tensor *t, tn_rng *r, double gain);

#ifdef __cplusplus
}
#endif
#endif
