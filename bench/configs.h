/* bench/configs.h - the named configurations of the benchmark contract
 * (docs/design.md section 4) and their command-line options, shared by
 * bench/rnn_bench.c (the whole training step, ours) and bench/dnnl_bench.c
 * (oneDNN's recurrent layers alone), so that both time the same shapes.
 *
 * Include after cli.h (ex_opt) and tensor/tensor.h (TN_RNN_MAX_LAYERS).
 */
#ifndef TN_BENCH_CONFIGS_H
#define TN_BENCH_CONFIGS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct bench_config {
    const char *name;
    const char *cell; /* "lstm", "gru" or "rnn" (tanh) */
    long hidden, batch, seq, layers;
} bench_config;

static const bench_config bench_configs[] = {
    {"lstm-s", "lstm", 128, 32, 64, 1},
    {"lstm-m", "lstm", 512, 64, 128, 2},
    {"gru-s", "gru", 256, 32, 64, 1},
    {"rnn-s", "rnn", 128, 32, 64, 1},
};
#define BENCH_N_CONFIGS (int)(sizeof bench_configs / sizeof bench_configs[0])

/* The vocabulary and the embedding width: the input size of layer 0. */
enum { BENCH_V = 65, BENCH_E = 64 };

/* The options that choose the shapes: six entries of an ex_opt table,
 * filling a bench_shape_opts *so. */
typedef struct bench_shape_opts {
    const char *config, *cell;          /* cell NULL: the config's */
    int64_t hidden, batch, seq, layers; /* 0: the config's */
} bench_shape_opts;

/* clang-format off */
#define BENCH_SHAPE_OPTS(so)                                                                   \
    {"--config", EX_CHOICE, &(so)->config, "NAME", "named configuration (docs/design.md)",     \
     .choices = "lstm-s|lstm-m|gru-s|rnn-s"},                                                 \
    {"--cell", EX_CHOICE, &(so)->cell, "CELL", "recurrent cell", .choices = "lstm|gru|rnn",   \
     .def = "the config's"},                                                                  \
    {"--hidden", EX_INT, &(so)->hidden, "H", "hidden units", .imin = 1, .imax = 16384,        \
     .def = "the config's"},                                                                  \
    {"--batch", EX_INT, &(so)->batch, "B", "batch size", .imin = 1, .imax = 65536,            \
     .def = "the config's"},                                                                  \
    {"--seq", EX_INT, &(so)->seq, "T", "sequence length", .imin = 1, .imax = 1000000,         \
     .def = "the config's"},                                                                  \
    {"--layers", EX_INT, &(so)->layers, "L", "stacked layers", .imin = 1,                     \
     .imax = TN_RNN_MAX_LAYERS, .def = "the config's"}
/* clang-format on */

/* The options of the timing, two entries of an ex_opt table: --seconds
 * (double *seconds) and --warmup (int64_t *warmup). */
/* clang-format off */
#define BENCH_TIME_OPTS(seconds, warmup)                                                       \
    {"--seconds", EX_REAL, (seconds), "S", "time the steps for about S seconds", .dmin = 0,   \
     .dmax = 86400},                                                                          \
    {"--warmup", EX_INT, (warmup), "W", "untimed steps first", .imin = 0, .imax = 1000000}
/* clang-format on */

/* Floating-point operations of the recurrent layers in one training step
 * (forward and backward, every timestep): 2 per multiply-add of the gate
 * products, three products per weight (forward, data and weight
 * gradients). */
static inline double bench_rnn_flops(const bench_config *cfg)
{
    const double gates = strcmp(cfg->cell, "lstm") == 0 ? 4 : strcmp(cfg->cell, "gru") == 0 ? 3 : 1;
    double flops = 0;
    for (long l = 0; l < cfg->layers; l++)
        flops += 6 * gates * (double)cfg->batch * cfg->hidden *
                 ((l == 0 ? BENCH_E : cfg->hidden) + cfg->hidden) * cfg->seq;
    return flops;
}

/* The configuration the options describe: the named one, with explicit
 * sizes overriding it. *name (n bytes) gets the config's name, or
 * "CELL-hH-bB-tT-lL" when anything was overridden. */
static inline bench_config bench_config_pick(const bench_shape_opts *so, char *name, size_t n)
{
    bench_config cfg = bench_configs[0];
    bool custom = false;
    for (int k = 0; k < BENCH_N_CONFIGS; k++)
        if (so->config && strcmp(bench_configs[k].name, so->config) == 0)
            cfg = bench_configs[k];
    if (so->cell && strcmp(so->cell, cfg.cell) != 0)
        cfg.cell = so->cell, custom = true;
    long *fields[4] = {&cfg.hidden, &cfg.batch, &cfg.seq, &cfg.layers};
    const int64_t given[4] = {so->hidden, so->batch, so->seq, so->layers};
    for (int k = 0; k < 4; k++)
        if (given[k] && given[k] != *fields[k])
            *fields[k] = (long)given[k], custom = true;
    if (custom)
        snprintf(name, n, "%s-h%ld-b%ld-t%ld-l%ld", cfg.cell, cfg.hidden, cfg.batch, cfg.seq,
                 cfg.layers);
    else
        snprintf(name, n, "%s", cfg.name);
    return cfg;
}

#endif
