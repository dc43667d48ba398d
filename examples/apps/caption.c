/* examples/apps/caption.c - an image captioner, the one-to-many pattern of
 * the lecture notes ("CNN features into an RNN"): a small CNN encodes a
 * generated scene, its features start an LSTM decoder that writes the
 * caption word by word.
 *
 *   caption train   [--steps N] [--batch B] [--lr X] [--clip X] [--embed E]
 *                   [--hidden H] [--channels C] [--grid G]
 *                   [--attention bahdanau|luong|general|none] [--train-scenes N]
 *                   [--val-scenes N] [--eval-every N] [--checkpoint PATH]
 *                   [--log CSV] [--loss-log CSV] [--threads N] [--seed S]
 *   caption eval    --checkpoint PATH [--beam K] [--length-norm] [--val-scenes N]
 *   caption caption --checkpoint PATH [--beam K] [--length-norm] [--scenes N] [--show]
 *                   [--attention-map FILE.png]
 *   caption gradcheck [--seed S]   (the loss's gradients, float64, small models)
 *   caption scenes  --out FILE [--split val|train] [--val-scenes N] [--train-scenes N]
 *                   (the held-out or the training scenes, for PyTorch)
 *
 * Data, generated (no download): a scene is a 32x32 RGB canvas, float
 * [3, 32, 32] in [0, 1] with a little Gaussian noise, holding one or two
 * shapes (circle, square, triangle) of 4 colours and 2 sizes, and its
 * caption: "a large red circle", or for two shapes side by side or one
 * over the other "a small blue square left of a large green triangle" /
 * "... above ..." (the first shape named is the left or upper one). The
 * training scenes come from a tn_rng seeded TRAIN_SEED, the held-out ones
 * from VAL_SEED: other images (other positions, sizes and noise), whose
 * captions may also occur in training (there are 24 one-shape and 1,152
 * two-shape captions). The vocabulary is an ex_words of <pad> <sos> <eos>
 * <unk> and the 13 words, kept in the checkpoint.
 *
 * Model (parameters named like a PyTorch module):
 *   encoder   encoder.0 Conv2d(3, C, 3, padding 1) -> ReLU -> MaxPool2d(2)
 *             encoder.3 Conv2d(C, 2C, 3, padding 1) -> ReLU -> MaxPool2d(2)
 *             encoder.6 Conv2d(2C, 4C, 3, padding 1) -> ReLU
 *             -> AdaptiveAvgPool2d(G) -> flatten: F = 4C G G features
 *             (G 2 by default: a 1x1 pool keeps little of where the shapes
 *             are, which "left of" and "above" need)
 *   start     h0 = init_h(features), c0 = init_c(features) (Linear F -> H)
 *   decoder   embed (V, E) of the previous word (<sos> first) -> decoder
 *             (LSTMCell E -> H), one tn_rnn_cell_forward per word, teacher
 *             forcing in training -> out (Linear H -> V)
 *   attention (--attention, "none" by default: the model above exactly)
 *             soft attention over the CNN's grid (Show, Attend and Tell, Xu
 *             et al. 2015): the annotation vectors are encoder.6's
 *             activations after its ReLU, before the pool, [B, 4C, 8, 8]
 *             read as 64 positions of 4C features; at each step the query
 *             h_{t-1} scores them (tn_attention "attn", its score function
 *             bahdanau with A = H, luong: the dot product, needs H = 4C, or
 *             general), the context c_t = sum_l alpha_tl a_l, and the
 *             cell's input is [embed(word); c_t] (decoder.weight_ih
 *             [4H, E + 4C]); h0 and c0 as without attention. The kind is
 *             the checkpoint's "attention" key (a file without it: none).
 *             caption --attention-map draws the first scene and each
 *             step's 8x8 weights (ex_plot_heatmap) and prints them.
 *   loss      tn_linear_cross_entropy over all T*B rows, <pad> ignored
 * The convolutions' weights and biases start uniform in +-1/sqrt(fan_in),
 * PyTorch's nn.Conv2d default (kaiming-uniform with a = sqrt(5)).
 *
 * Decoding: greedy (the likeliest word each step), or beam search with K
 * beams per scene: each step every live beam is extended by every word, the
 * K best continuations by total log-probability stay live, a continuation
 * by <eos> is a finished caption; a scene ends when K captions finished (or
 * with raw scores when the best finished one outscores every live beam, as
 * scores only fall) or after MAX_WORDS words. The best finished caption is
 * chosen by its total log-probability (not length-normalised), or with
 * --length-norm by that divided by its length (words + <eos>). --beam 1 is
 * greedy exactly. BLEU is corpus BLEU-4 (ex_bleu, as translate's) of the
 * captions against the true ones, on the held-out scenes.
 */
#define _POSIX_C_SOURCE 200809L
#include <tensor/tensor.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bleu.h"
#include "cli.h"
#include "export.h"
#include "plot.h"
#include "train.h"
#include "vocab.h"

#define PROG          "caption"
#define TRAIN_SEED    20261205u
#define VAL_SEED      31337u
#define DATA_SEED_MIX 0x5851f42d4c957f2dULL

enum {
    PAD = 0,
    SOS = 1,
    EOS = 2,
    UNK = 3,
    SIDE = 32, /* the canvas: SIDE x SIDE pixels */
    PIX = 3 * SIDE * SIDE,
    MAX_WORDS = 10,        /* the longest caption */
    T_MAX = MAX_WORDS + 1, /* decoder steps: the words and <eos> */
    EVAL_BATCH = 250,
    MAX_BEAM = 64,
    MAX_SCENES = 100000, /* 1.2 GB of images */
    MAP_SIDE = SIDE / 4, /* the last feature map: MAP_SIDE x MAP_SIDE positions */
    POS = MAP_SIDE * MAP_SIDE,
};

/* The vocabulary: specials, then the words of the captions. */
static const char *const WORDS[] = {"<pad>",  "<sos>",    "<eos>", "<unk>", "a",      "small",
                                    "large",  "red",      "green", "blue",  "yellow", "circle",
                                    "square", "triangle", "left",  "of",    "above"};
enum { N_WORDS = (int)(sizeof WORDS / sizeof WORDS[0]), N_SPECIAL = 4 };
enum { W_A = 4, W_SMALL = 5, W_RED = 7, W_CIRCLE = 11, W_LEFT = 14, W_OF = 15, W_ABOVE = 16 };

/* ---- scenes ---- */

typedef struct scenes {
    int64_t n;
    float *img;     /* n x [3, SIDE, SIDE] */
    int32_t *words; /* n x MAX_WORDS word ids (of WORDS) */
    int32_t *len;   /* [n] words of each caption */
} scenes;

static void scenes_free(scenes *s)
{
    free(s->img), free(s->words), free(s->len);
    memset(s, 0, sizeof *s);
}

typedef struct shape {
    int kind, colour, large; /* kind: circle, square, triangle */
    double cx, cy, r;
} shape;

static const float COLOUR[4][3] = {
    {0.90f, 0.15f, 0.15f}, {0.15f, 0.80f, 0.20f}, {0.20f, 0.30f, 0.95f}, {0.90f, 0.85f, 0.15f}};

static double uniform(tn_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * tn_rng_uniform(r);
}

static void shape_draw(float *img, const shape *s, tn_rng *r)
{
    float col[3];
    for (int k = 0; k < 3; k++) { /* a little jitter of the colour */
        double v = COLOUR[s->colour][k] + uniform(r, -0.08, 0.08);
        col[k] = (float)(v < 0 ? 0 : v > 1 ? 1 : v);
    }
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
            double dx = x + 0.5 - s->cx, dy = y + 0.5 - s->cy;
            bool in;
            if (s->kind == 0)
                in = dx * dx + dy * dy <= s->r * s->r;
            else if (s->kind == 1)
                in = fabs(dx) <= 0.8 * s->r && fabs(dy) <= 0.8 * s->r;
            else /* apex up: half-width grows from 0 at the top to r at the bottom */
                in = dy >= -s->r && dy <= s->r && fabs(dx) <= (dy + s->r) / 2;
            if (in)
                for (int k = 0; k < 3; k++)
                    img[(k * SIDE + y) * SIDE + x] = col[k];
        }
}

static void shape_pick(shape *s, tn_rng *r)
{
    s->kind = (int)(tn_rng_next(r) % 3);
    s->colour = (int)(tn_rng_next(r) % 4);
    s->large = (int)(tn_rng_next(r) % 2);
    s->r = s->large ? uniform(r, 6, 7) : uniform(r, 3, 4);
}

/* "a <size> <colour> <shape>" at w; 4 words. */
static int shape_words(const shape *s, int32_t *w)
{
    w[0] = W_A, w[1] = W_SMALL + s->large, w[2] = W_RED + s->colour, w[3] = W_CIRCLE + s->kind;
    return 4;
}

/* One scene into img [3, SIDE, SIDE] and its caption (w, *len). */
static void scene_make(tn_rng *r, float *img, int32_t *w, int32_t *len)
{
    for (int64_t i = 0; i < PIX; i++)
        img[i] = 0;
    shape a, b;
    shape_pick(&a, r);
    int n = 1 + (int)(tn_rng_next(r) % 2);
    if (n == 1) {
        a.cx = uniform(r, a.r + 1, SIDE - 1 - a.r);
        a.cy = uniform(r, a.r + 1, SIDE - 1 - a.r);
        *len = shape_words(&a, w);
    } else {
        shape_pick(&b, r);
        bool above = tn_rng_next(r) % 2;
        /* along the relation's axis a comes first, at least r_a + r_b + 1
         * apart; across it both near one line (+-2) */
        double gap = a.r + b.r + 1, hi_b = SIDE - 1 - b.r, m = a.r > b.r ? a.r : b.r;
        double pa = uniform(r, a.r + 1, hi_b - gap), pb = uniform(r, pa + gap, hi_b);
        double line = uniform(r, m + 3, SIDE - 3 - m);
        double qa = line + uniform(r, -2, 2), qb = line + uniform(r, -2, 2);
        if (above)
            a.cy = pa, b.cy = pb, a.cx = qa, b.cx = qb;
        else
            a.cx = pa, b.cx = pb, a.cy = qa, b.cy = qb;
        int k = shape_words(&a, w);
        if (above) {
            w[k++] = W_ABOVE;
        } else {
            w[k++] = W_LEFT;
            w[k++] = W_OF;
        }
        k += shape_words(&b, w + k);
        *len = k;
        shape_draw(img, &b, r);
    }
    shape_draw(img, &a, r);
    for (int64_t i = 0; i < PIX; i++) {
        double v = img[i] + 0.05 * tn_rng_normal(r);
        img[i] = (float)(v < 0 ? 0 : v > 1 ? 1 : v);
    }
}

/* n scenes from a tn_rng seeded seed. Returns 0 or -1 (out of memory). */
static int scenes_make(scenes *s, int64_t n, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->img = malloc(sizeof *s->img * (size_t)(n * PIX));
    s->words = malloc(sizeof *s->words * (size_t)(n * MAX_WORDS));
    s->len = malloc(sizeof *s->len * (size_t)n);
    if (!s->img || !s->words || !s->len) {
        scenes_free(s);
        fprintf(stderr, PROG ": out of memory (%" PRId64 " scenes)\n", n);
        return -1;
    }
    s->n = n;
    tn_rng r;
    tn_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++)
        scene_make(&r, s->img + i * PIX, s->words + i * MAX_WORDS, s->len + i);
    return 0;
}

/* ---- options ---- */

typedef struct opts {
    const char *checkpoint, *out, *log, *loss_log, *curve, *attention, *attention_map, *split;
    int64_t steps, batch, eval_every, threads, embed, hidden, channels, grid;
    int64_t train_scenes, val_scenes, beam, scenes;
    double lr, clip;
    bool length_norm, show;
    uint64_t seed;
} opts;

enum { TRAIN = 1, EVAL = 2, CAPTION = 4, GRADCHECK = 8, EXPORT = 16, SCENES = 32 };

static int parse_opts(int argc, char **argv, opts *o, int *command)
{
    *o = (opts){.steps = 1500,
                .batch = 64,
                .eval_every = 500,
                .embed = 32,
                .hidden = 128,
                .channels = 16,
                .grid = 2,
                .train_scenes = 8000,
                .val_scenes = 500,
                .beam = 1,
                .scenes = 10,
                .lr = 3e-3,
                .clip = 5.0,
                .seed = 1234,
                .attention = "none",
                .split = "val"};
    const ex_opt table[] = {
        {"--out", EX_STRING, &o->out, "FILE",
         "export: where to write the model; scenes: the scenes (safetensors)",
         .commands = EXPORT | SCENES},
        {"--steps", EX_INT, &o->steps, "N", "training steps", .imin = 0, .imax = EX_STEPS_MAX,
         .commands = TRAIN},
        {"--batch", EX_INT, &o->batch, "B", "scenes per step", .imin = 1, .imax = 4096,
         .commands = TRAIN},
        {"--lr", EX_REAL, &o->lr, "X", "Adam learning rate", .dmin = 0, .dmin_open = true,
         .dmax = 10, .commands = TRAIN},
        {"--clip", EX_REAL, &o->clip, "X", "clip the global gradient norm to X (0: off)", .dmin = 0,
         .dmax = 1e6, .commands = TRAIN},
        {"--embed", EX_INT, &o->embed, "E", "word embedding size", .imin = 1, .imax = 4096,
         .commands = TRAIN},
        {"--hidden", EX_INT, &o->hidden, "H", "decoder LSTM hidden units", .imin = 1, .imax = 4096,
         .commands = TRAIN},
        {"--channels", EX_INT, &o->channels, "C", "channels of the first convolution (then 2C, 4C)",
         .imin = 1, .imax = 256, .commands = TRAIN},
        {"--grid", EX_INT, &o->grid, "G",
         "the encoder's adaptive average pool: G x G cells (1: global average)", .imin = 1,
         .imax = 8, .commands = TRAIN},
        {"--attention", EX_CHOICE, &o->attention, "KIND",
         "soft attention over the last feature map's 8x8 positions, its score function (luong: "
         "the dot product, needs --hidden = 4 x --channels)",
         .choices = "bahdanau|luong|general|none", .commands = TRAIN},
        {"--train-scenes", EX_INT, &o->train_scenes, "N",
         "generated training scenes (the same ones for train and scenes --split train)", .imin = 1,
         .imax = MAX_SCENES, .commands = TRAIN | SCENES},
        {"--val-scenes", EX_INT, &o->val_scenes, "N",
         "generated held-out scenes (the same ones for train, eval and scenes)", .imin = 1,
         .imax = MAX_SCENES, .commands = TRAIN | EVAL | SCENES},
        {"--split", EX_CHOICE, &o->split, "WHICH",
         "scenes: write the held-out scenes (val) or train's training scenes (train)",
         .choices = "val|train", .commands = SCENES},
        {"--seed", EX_UINT64, &o->seed, "S", "random seed (weights and batches; not the scenes)",
         .commands = TRAIN | GRADCHECK},
        {"--threads", EX_INT, &o->threads, "N", "threads for OpenMP loops and BLIS", .imin = 1,
         .imax = 1024, .def = EX_THREADS_DEFAULT},
        {"--checkpoint", EX_STRING, &o->checkpoint, "PATH",
         "safetensors checkpoint to write (train) or read", .def = "train: none; else required"},
        {"--eval-every", EX_INT, &o->eval_every, "N",
         "held-out loss and greedy BLEU every N steps and at the end (0: only at the end)",
         .imin = 0, .imax = EX_STEPS_MAX, .commands = TRAIN},
        EX_TRAIN_LOG_OPTS(&o->log, &o->loss_log, &o->curve, TRAIN),
        {"--beam", EX_INT, &o->beam, "K", "beam search with K beams (1: greedy)", .imin = 1,
         .imax = MAX_BEAM, .commands = EVAL | CAPTION},
        {"--length-norm", EX_FLAG, &o->length_norm, NULL,
         "rank finished beams by log-probability per token (words and <eos>), not the total",
         .commands = EVAL | CAPTION},
        {"--scenes", EX_INT, &o->scenes, "N", "held-out scenes to caption (the first N)", .imin = 1,
         .imax = MAX_SCENES, .commands = CAPTION},
        {"--show", EX_FLAG, &o->show, NULL,
         "draw each scene in text after its row (16x16, a letter per 2x2 pixels: r g b y, "
         ". background)",
         .commands = CAPTION},
        {"--attention-map", EX_STRING, &o->attention_map, "FILE",
         "attention models: the first scene and the attention weights of each word of its "
         "caption, as text and a heat map FILE (PNG; CSV when gnuplot is missing)",
         .commands = CAPTION},
    };
    static const char *const commands[] = {"train",  "eval",   "caption", "gradcheck",
                                           "export", "scenes", NULL};
    static const char *const command_help[] = {
        "train a captioner on generated scenes (and write --checkpoint)",
        "print the held-out loss and BLEU of greedy captions (and of --beam K)",
        "print held-out scenes' true captions next to the model's",
        "check the loss's gradients against central differences (float64, small models: "
        "plain and with each attention)",
        "write --checkpoint's model alone to --out, as the PyTorch module's state_dict "
        "(tools/torch_models.py)",
        "write eval's held-out scenes (or with --split train train's training scenes) to --out: "
        "images [N, 3, 32, 32] and captions [N, 11] (word ids, <eos>, then <pad>; float32)",
    };
    const ex_spec spec = {
        .prog = PROG,
        .summary = "image captioner: CNN encoder -> LSTM decoder on generated scenes of shapes",
        .commands = commands,
        .command_help = command_help,
        .opts = table,
        .n_opts = (int)(sizeof table / sizeof table[0]),
        .notes = "Scenes: 32x32 RGB, one or two shapes (circle, square, triangle; red, green,\n"
                 "blue, yellow; small, large), captions such as \"a large red circle\" or \"a\n"
                 "small blue square left of a large green triangle\". BLEU: corpus BLEU-4 on\n"
                 "the held-out scenes. Beam search ranks finished captions by their total\n"
                 "log-probability unless --length-norm.\n",
    };
    return ex_parse(&spec, argc, argv, command);
}

/* ---- model and checkpoints ---- */

typedef struct model {
    tn_params ps;
    tn_conv2d_layer conv[3]; /* encoder.0, .3, .6: Conv2d(.., 3, padding 1) */
    tn_linear init_h, init_c, out;
    tn_embedding emb;
    tn_rnn_cell dec;
    tn_attention attn; /* "attn" when attention >= 0 */
    ex_words v;
    int64_t embed, hidden, channels, grid;
    int attention; /* a tn_attn_kind, or -1: none */
    tn_dtype dt;   /* TN_F32 (0, a zeroed model's); TN_F64 for the gradient check */
} model;

static void model_free(model *m)
{
    tn_params_free(&m->ps);
    ex_words_free(&m->v);
    memset(m, 0, sizeof *m);
}

static int64_t model_features(const model *m) { return 4 * m->channels * m->grid * m->grid; }

/* The LSTM cell's input: the word's embedding, with attention and the
 * context vector (4C features) after it. */
static int64_t decoder_input(const model *m)
{
    return m->embed + (m->attention >= 0 ? 4 * m->channels : 0);
}

/* The parameters of m's sizes (m->v holds the vocabulary), from seed. */
static int model_build(model *m, uint64_t seed)
{
    tn_rng r;
    tn_rng_seed(&r, seed);
    tn_params_init(&m->ps);
    static const char *const conv_names[3] = {"encoder.0", "encoder.3", "encoder.6"};
    tn_conv2d_opts co = tn_conv2d_defaults();
    co.padding_h = co.padding_w = 1;
    int64_t cin = 3, V = m->v.n;
    for (int k = 0; k < 3; k++) { /* nn.Conv2d's names and init */
        int64_t cout = m->channels << k;
        if (tn_conv2d_init(&m->conv[k], &m->ps, conv_names[k], cin, cout, 3, 3, &co, true, m->dt,
                           &r)) {
            fprintf(stderr, PROG ": %s\n", tn_last_error());
            return -1;
        }
        cin = cout;
    }
    int64_t F = model_features(m);
    if (tn_linear_init(&m->init_h, &m->ps, "init_h", F, m->hidden, true, m->dt, &r) ||
        tn_linear_init(&m->init_c, &m->ps, "init_c", F, m->hidden, true, m->dt, &r) ||
        tn_embedding_init(&m->emb, &m->ps, "embed", V, m->embed, PAD, m->dt, &r) ||
        tn_rnn_cell_init(&m->dec, &m->ps, "decoder", TN_CELL_LSTM, decoder_input(m), m->hidden,
                         m->dt, &r) ||
        tn_linear_init(&m->out, &m->ps, "out", m->hidden, V, true, m->dt, &r) ||
        (m->attention >= 0 &&
         tn_attention_init(&m->attn, &m->ps, "attn", (tn_attn_kind)m->attention, m->hidden, cin,
                           m->hidden, m->dt, &r))) {
        fprintf(stderr, PROG ": %s\n", tn_last_error());
        return -1;
    }
    return 0;
}

/* The program's vocabulary into the zeroed v. Returns 0 or -1. */
static int words_build(ex_words *v)
{
    for (int i = 0; i < N_WORDS; i++)
        if (ex_words_add(v, WORDS[i], strlen(WORDS[i])) != i) {
            ex_words_free(v);
            fprintf(stderr, PROG ": out of memory\n");
            return -1;
        }
    return 0;
}

/* features [B, F] of images x [B, 3, SIDE, SIDE]; with ann (attention)
 * *ann gets the annotation vectors [B, POS, 4C]: the last convolution's
 * activations (after its ReLU, before the pool) at each of the POS
 * positions of its MAP_SIDE x MAP_SIDE map, row by row. */
static tn_tensor *encode(tn_tape *tp, const model *m, tn_tensor *x, tn_tensor **ann)
{
    tn_tensor *y = x;
    int64_t B = x->shape[0], C4 = 4 * m->channels;
    for (int k = 0; k < 3; k++) {
        y = tn_relu(tp, tn_conv2d_forward(tp, &m->conv[k], y));
        if (k < 2)
            y = tn_max_pool2d(tp, y, 2, 2, 0);
    }
    if (ann) /* [B, 4C, 8, 8] -> [B, 4C, 64] -> [B, 64, 4C] */
        *ann = tn_contiguous(tp,
                             tn_transpose(tp, tn_reshape(tp, y, 3, (int64_t[]){B, C4, POS}), 1, 2));
    y = tn_adaptive_avg_pool2d(tp, y, m->grid, m->grid);
    return tn_reshape(tp, y, 2, (int64_t[]){B, model_features(m)});
}

/* The attention's memory of the annotations ann [B, POS, 4C], each scene's
 * repeated K times (row b K + k: its beams). Returns 0 or -1 (the tape's
 * error). */
static int attn_memory(tn_tape *tp, const model *m, tn_tensor *ann, int64_t B, int K,
                       tn_attn_memory *mem)
{
    int64_t C4 = 4 * m->channels;
    tn_tensor *rows = K > 1 ? tn_tape_tensor(tp, TN_I32, 1, (int64_t[]){B * K}) : NULL;
    if (rows) {
        for (int64_t r = 0; r < B * K; r++)
            ((int32_t *)rows->data)[r] = (int32_t)(r / K);
        tn_tensor *flat = tn_reshape(tp, ann, 2, (int64_t[]){B, POS * C4});
        ann = tn_reshape(tp, tn_gather_rows(tp, flat, rows, -1), 3, (int64_t[]){B * K, POS, C4});
    }
    return tn_attention_prepare(tp, &m->attn, ann, NULL, mem) == TN_OK ? 0 : -1;
}

/* One decoder step from the state (h, c) [B, H] on the words' embeddings
 * xe [B, E]: with attention the cell's input is [xe; context], the context
 * of the query h (h_{t-1}) over mem, and *w (when not NULL) gets its
 * weights [B, POS]. Returns the new h (*cn the new c), or NULL (the tape's
 * error). */
static tn_tensor *decoder_step(tn_tape *tp, const model *m, const tn_attn_memory *mem,
                               tn_tensor *xe, tn_tensor *h, tn_tensor *c, tn_tensor **cn,
                               tn_tensor **w)
{
    if (m->attention >= 0) {
        tn_tensor *ctx;
        if (tn_attention_forward(tp, &m->attn, mem, h, &ctx, w) != TN_OK)
            return NULL;
        xe = tn_concat(tp, 2, (tn_tensor *[]){xe, ctx}, 1);
    }
    return tn_rnn_cell_forward(tp, &m->dec, xe, h, c, cn);
}

static int model_save(const char *path, const model *m, int64_t step)
{
    tn_meta meta;
    tn_meta_init(&meta);
    char *words = ex_words_join(&m->v);
    tn_status s = words ? TN_OK : TN_ERR_MEMORY;
    if (s == TN_OK)
        s = tn_meta_set(&meta, "format", "caption 1");
    if (s == TN_OK)
        s = tn_meta_set(&meta, "words", words);
    if (s == TN_OK) /* "none" too (a file without the key is read as "none") */
        s = tn_meta_set(&meta, "attention", tn_attn_kind_name(m->attention));
    const char *keys[5] = {"embed", "hidden", "channels", "grid", "step"};
    int64_t vals[5] = {m->embed, m->hidden, m->channels, m->grid, step};
    for (int k = 0; k < 5 && s == TN_OK; k++)
        s = tn_meta_set_int(&meta, keys[k], vals[k]);
    tn_params *sets[1] = {(tn_params *)&m->ps};
    if (s == TN_OK)
        s = tn_save(path, sets, 1, &meta);
    if (s != TN_OK)
        fprintf(stderr, PROG ": --checkpoint %s: %s\n", path,
                s == TN_ERR_MEMORY && !words ? "out of memory" : tn_last_error());
    free(words);
    tn_meta_free(&meta);
    return s == TN_OK ? 0 : -1;
}

static int model_load(const char *path, model *m)
{
    memset(m, 0, sizeof *m);
    tn_meta meta;
    tn_meta_init(&meta);
    int rc = -1;
    static const char *const keys[4] = {"embed", "hidden", "channels", "grid"};
    int64_t *const vals[4] = {&m->embed, &m->hidden, &m->channels, &m->grid};
    if (ex_checkpoint_ints(PROG, path, &meta, keys, vals, 4))
        goto done;
    const char *fmt = tn_meta_get(&meta, "format"), *words = tn_meta_get(&meta, "words");
    if (!fmt || strcmp(fmt, "caption 1") || !words || m->embed < 1 || m->embed > 4096 ||
        m->hidden < 1 || m->hidden > 4096 || m->channels < 1 || m->channels > 256 || m->grid < 1 ||
        m->grid > 8) {
        fprintf(stderr,
                PROG ": --checkpoint %s: not a caption checkpoint (bad or missing "
                     "format, sizes or words)\n",
                path);
        goto done;
    }
    /* the words must be this program's: its scenes' captions are made of them */
    bool same = ex_words_split(&m->v, words, N_WORDS, WORDS, N_SPECIAL) == 0 && m->v.n == N_WORDS;
    for (int i = 0; same && i < N_WORDS; i++)
        same = strcmp(m->v.words[i], WORDS[i]) == 0;
    if (!same) {
        fprintf(stderr,
                PROG ": --checkpoint %s: its vocabulary is not this program's %d "
                     "words\n",
                path, N_WORDS);
        goto done;
    }
    /* the attention: none (also a file from before the key), or a kind */
    const char *att = tn_meta_get(&meta, "attention");
    tn_attn_kind kind;
    m->attention = -1;
    if (att && strcmp(att, "none") != 0) {
        if (tn_attn_kind_from_name(att, &kind) != TN_OK) {
            fprintf(stderr,
                    PROG ": --checkpoint %s: its metadata attention \"%s\" is not none, "
                         "bahdanau, luong or general\n",
                    path, att);
            goto done;
        }
        m->attention = (int)kind;
    }
    char sizes[192];
    snprintf(sizes, sizeof sizes,
             "embed %" PRId64 ", hidden %" PRId64 ", channels %" PRId64 ", grid %" PRId64
             ", attention %s",
             m->embed, m->hidden, m->channels, m->grid, tn_attn_kind_name(m->attention));
    int64_t H = m->hidden;
    ex_shape want[4] = {{"init_h.weight", H, model_features(m)},
                        {"decoder.weight_ih", 4 * H, decoder_input(m)},
                        {"decoder.weight_hh", 4 * H, H},
                        {"out.weight", N_WORDS, H}};
    if (m->attention == TN_ATTN_LUONG_DOT && m->hidden != 4 * m->channels) {
        fprintf(stderr,
                PROG ": --checkpoint %s: metadata attention luong (dot) needs hidden %" PRId64
                     " = 4 x channels %" PRId64 "\n",
                path, m->hidden, m->channels);
        goto done;
    }
    if (ex_check_shapes(PROG, path, sizes, want, 4) == 0 && model_build(m, 0) == 0)
        rc = ex_load_params(PROG, path, &m->ps);
done:
    tn_meta_free(&meta);
    if (rc)
        model_free(m);
    return rc;
}

/* ---- batches, loss, decoding ---- */

/* Images x [B, 3, SIDE, SIDE] of scenes idx[0..B) on the tape. */
static tn_tensor *batch_images(tn_tape *tp, const model *m, const scenes *s, const int64_t *idx,
                               int64_t B)
{
    tn_tensor *x = tn_tape_tensor(tp, m->dt, 4, (int64_t[]){B, 3, SIDE, SIDE});
    for (int64_t b = 0; x && b < B; b++) {
        if (m->dt == TN_F32)
            memcpy((float *)x->data + b * PIX, s->img + idx[b] * PIX, sizeof(float) * PIX);
        else
            for (int64_t i = 0; i < PIX; i++)
                tn_tensor_set(x, b * PIX + i, s->img[idx[b] * PIX + i]);
    }
    return x;
}

/* The cross-entropy of the captions of scenes idx[0..B) (their words and
 * <eos>; teacher forcing), the mean over the targets or their sum (red);
 * *tokens gets the number of targets. */
static tn_tensor *caption_loss(tn_tape *tp, const model *m, const scenes *s, const int64_t *idx,
                               int64_t B, tn_reduction red, int64_t *tokens)
{
    int64_t T = 1;
    for (int64_t b = 0; b < B; b++)
        T = s->len[idx[b]] + 1 > T ? s->len[idx[b]] + 1 : T;
    /* time-major: row t of ids is every scene's input at step t */
    tn_tensor *ids = tn_tape_tensor(tp, TN_I32, 2, (int64_t[]){T, B});
    tn_tensor *tg = tn_tape_tensor(tp, TN_I32, 1, (int64_t[]){T * B});
    tn_tensor *x = batch_images(tp, m, s, idx, B);
    if (!ids || !tg || !x)
        return NULL;
    int32_t *in = ids->data, *out = tg->data;
    *tokens = 0;
    for (int64_t b = 0; b < B; b++) {
        const int32_t *w = s->words + idx[b] * MAX_WORDS;
        int64_t n = s->len[idx[b]];
        for (int64_t t = 0; t < T; t++) {
            in[t * B + b] = t == 0 ? SOS : t <= n ? w[t - 1] : PAD;
            out[t * B + b] = t < n ? w[t] : t == n ? EOS : PAD;
        }
        *tokens += n + 1;
    }
    tn_tensor *ann = NULL;
    tn_tensor *f = encode(tp, m, x, m->attention >= 0 ? &ann : NULL);
    tn_attn_memory mem = {0};
    if (m->attention >= 0 && attn_memory(tp, m, ann, B, 1, &mem))
        return NULL;
    tn_tensor *h = tn_linear_forward(tp, &m->init_h, f), *c = tn_linear_forward(tp, &m->init_c, f);
    tn_tensor *e = tn_embedding_forward(tp, &m->emb, ids); /* [T, B, E] */
    tn_tensor *hs[T_MAX];
    for (int64_t t = 0; t < T; t++) {
        tn_tensor *xt = tn_reshape(tp, tn_narrow(tp, e, 0, t, 1), 2, (int64_t[]){B, m->embed});
        h = decoder_step(tp, m, &mem, xt, h, c, &c, NULL);
        if (!h)
            return NULL;
        hs[t] = h;
    }
    tn_tensor *all = tn_reshape(tp, tn_stack(tp, (int)T, hs, 0), 2, (int64_t[]){T * B, m->hidden});
    return tn_linear_cross_entropy(tp, all, m->out.weight, m->out.bias, tg, NULL, PAD, 0, red);
}

/* Row i of the contiguous 2-D dst = row j of the contiguous src. */
static void copy_row(tn_tensor *dst, int64_t i, const tn_tensor *src, int64_t j)
{
    size_t row = tn_dtype_size(dst->dtype) * (size_t)dst->shape[1];
    memcpy((char *)dst->data + (size_t)i * row, (const char *)src->data + (size_t)j * row, row);
}

/* Captions of scenes idx[0..B) into words (B x MAX_WORDS) and len: beam
 * search with K beams (K 1: greedy exactly). With attention and attn (B x
 * T_MAX x POS) not NULL, attn gets the attention weights of each caption's
 * steps (its words and <eos>). No gradients; tp is reset by the caller.
 * Returns 0 or -1 (tape error; the caller prints it). */
static int decode(tn_tape *tp, const model *m, const scenes *s, const int64_t *idx, int64_t B,
                  int K, bool length_norm, int32_t *words, int32_t *len, double *attn)
{
    int64_t R = B * K, H = m->hidden, V = m->v.n;
    bool with_attn = m->attention >= 0;
    if (!with_attn)
        attn = NULL;
    tn_tensor *x = batch_images(tp, m, s, idx, B), *ann = NULL;
    tn_tensor *f = x ? encode(tp, m, x, with_attn ? &ann : NULL) : NULL;
    tn_attn_memory mem = {0};
    tn_tensor *h0 = f ? tn_contiguous(tp, tn_linear_forward(tp, &m->init_h, f)) : NULL;
    tn_tensor *c0 = f ? tn_contiguous(tp, tn_linear_forward(tp, &m->init_c, f)) : NULL;
    tn_tensor *h = tn_tape_tensor(tp, m->dt, 2, (int64_t[]){R, H});
    tn_tensor *c = tn_tape_tensor(tp, m->dt, 2, (int64_t[]){R, H});
    tn_tensor *ids = tn_tape_tensor(tp, TN_I32, 1, &R);
    /* per row (scene b's beam k at b K + k): score, words; per scene the
     * best finished caption */
    double *score = malloc(sizeof *score * (size_t)R), *lp = malloc(sizeof *lp * (size_t)(R * V));
    double *nscore = malloc(sizeof *nscore * (size_t)R);
    double *fin = malloc(sizeof *fin * (size_t)B);
    int32_t *bw = calloc((size_t)(R * MAX_WORDS), sizeof *bw);
    int32_t *nbw = calloc((size_t)(R * MAX_WORDS), sizeof *nbw);
    int32_t *parent = malloc(sizeof *parent * (size_t)R), *ntok = malloc(sizeof *ntok * (size_t)R);
    int *nfin = calloc((size_t)B, sizeof *nfin);
    bool *done = calloc((size_t)B, sizeof *done);
    double *cs = malloc(sizeof *cs * (size_t)(2 * K));
    int32_t *ck = malloc(sizeof *ck * (size_t)(2 * K)), *cv = malloc(sizeof *cv * (size_t)(2 * K));
    /* with attn: each row's weights so far (T_MAX x POS a row), as bw */
    size_t arow = (size_t)(T_MAX * POS);
    double *aw = attn ? malloc(sizeof *aw * (size_t)R * arow) : NULL;
    double *naw = attn ? malloc(sizeof *naw * (size_t)R * arow) : NULL;
    double *wt = attn ? malloc(sizeof *wt * (size_t)(R * POS)) : NULL;
    int rc = -1;
    if (!h0 || !c0 || !h || !c || !ids || (with_attn && attn_memory(tp, m, ann, B, K, &mem)))
        goto done;
    if (!score || !lp || !nscore || !fin || !bw || !nbw || !parent || !ntok || !nfin || !done ||
        !cs || !ck || !cv || (attn && (!aw || !naw || !wt))) {
        tn_set_error(TN_ERR_MEMORY, "caption: out of memory decoding %" PRId64 " scenes", B);
        goto done;
    }
    for (int64_t r = 0; r < R; r++) {
        copy_row(h, r, h0, r / K);
        copy_row(c, r, c0, r / K);
        score[r] = r % K == 0 ? 0 : -INFINITY; /* one live beam to start */
        ((int32_t *)ids->data)[r] = SOS;
    }
    for (int64_t b = 0; b < B; b++)
        fin[b] = -INFINITY, len[b] = 0;
    for (int t = 0; t < T_MAX; t++) {
        tn_tensor *cn = NULL, *w = NULL;
        tn_tensor *hn = decoder_step(tp, m, &mem, tn_embedding_forward(tp, &m->emb, ids), h, c, &cn,
                                     attn ? &w : NULL);
        tn_tensor *l = hn ? tn_log_softmax(tp, tn_linear_forward(tp, &m->out, hn), 1) : NULL;
        hn = hn ? tn_contiguous(tp, hn) : NULL;
        cn = cn ? tn_contiguous(tp, cn) : NULL;
        if (!l || !hn || !cn || (attn && !w))
            goto done;
        tn_tensor_to_double(l, lp);
        if (attn) { /* row r's weights at step t: what its continuations were chosen with */
            tn_tensor_to_double(w, wt);
            for (int64_t r = 0; r < R; r++)
                memcpy(aw + (size_t)r * arow + (size_t)(t * POS), wt + r * POS, sizeof *wt * POS);
        }
        bool all_done = true;
        for (int64_t b = 0; b < B; b++) {
            int64_t r0 = b * K;
            for (int k = 0; k < K; k++)
                nscore[r0 + k] = -INFINITY, parent[r0 + k] = (int32_t)(r0 + k), ntok[r0 + k] = PAD;
            if (done[b])
                continue;
            /* the 2K best continuations, best first (ties: lower beam, word) */
            int nc = 0;
            for (int k = 0; k < K; k++) {
                if (!isfinite(score[r0 + k]))
                    continue;
                for (int64_t v = 0; v < V; v++) {
                    double sc = score[r0 + k] + lp[(r0 + k) * V + v];
                    if (nc == 2 * K && !(sc > cs[nc - 1]))
                        continue;
                    int at = nc < 2 * K ? nc++ : nc - 1;
                    while (at > 0 && sc > cs[at - 1]) {
                        cs[at] = cs[at - 1], ck[at] = ck[at - 1], cv[at] = cv[at - 1];
                        at--;
                    }
                    cs[at] = sc, ck[at] = k, cv[at] = (int32_t)v;
                }
            }
            int live = 0;
            int32_t plen = (int32_t)t; /* every live beam has t words */
            for (int i = 0; i < nc && live < K; i++) {
                int64_t pr = r0 + ck[i];
                if (cv[i] == EOS || t == MAX_WORDS) {
                    if (cv[i] != EOS)
                        continue; /* no room for another word */
                    double rank = length_norm ? cs[i] / (double)(plen + 1) : cs[i];
                    if (rank > fin[b]) {
                        fin[b] = rank;
                        len[b] = plen;
                        memcpy(words + b * MAX_WORDS, bw + pr * MAX_WORDS,
                               sizeof *words * (size_t)plen);
                        if (attn)
                            memcpy(attn + (size_t)b * arow, aw + (size_t)pr * arow,
                                   sizeof *aw * (size_t)((t + 1) * POS));
                    }
                    nfin[b]++;
                    continue;
                }
                nscore[r0 + live] = cs[i], parent[r0 + live] = (int32_t)pr;
                ntok[r0 + live] = cv[i];
                live++;
            }
            if (t == MAX_WORDS && nfin[b] == 0) { /* none ended: the best, cut */
                len[b] = MAX_WORDS;
                memcpy(words + b * MAX_WORDS, bw + r0 * MAX_WORDS, sizeof *words * MAX_WORDS);
                if (attn)
                    memcpy(attn + (size_t)b * arow, aw + (size_t)r0 * arow,
                           sizeof *aw * MAX_WORDS * POS);
            }
            /* done: K finished, nothing live, or (raw scores only fall) the
             * best finished outscores every live beam */
            if (nfin[b] >= K || live == 0 || (!length_norm && nfin[b] && fin[b] >= nscore[r0]))
                done[b] = true;
            if (!done[b])
                all_done = false;
        }
        /* the live beams: words, scores, states taken from their parents */
        for (int64_t r = 0; r < R; r++) {
            memcpy(nbw + r * MAX_WORDS, bw + (int64_t)parent[r] * MAX_WORDS,
                   sizeof *bw * (size_t)t);
            if (t < MAX_WORDS)
                nbw[r * MAX_WORDS + t] = ntok[r];
            score[r] = done[r / K] ? -INFINITY : nscore[r];
        }
        int32_t *sw = bw;
        bw = nbw, nbw = sw;
        for (int64_t r = 0; attn && r < R; r++)
            memcpy(naw + (size_t)r * arow, aw + (size_t)parent[r] * arow,
                   sizeof *aw * (size_t)((t + 1) * POS));
        if (attn) {
            double *sa = aw;
            aw = naw, naw = sa;
        }
        if (all_done)
            break;
        h = tn_tape_tensor(tp, m->dt, 2, (int64_t[]){R, H});
        c = tn_tape_tensor(tp, m->dt, 2, (int64_t[]){R, H});
        ids = tn_tape_tensor(tp, TN_I32, 1, &R);
        if (!h || !c || !ids)
            goto done;
        for (int64_t r = 0; r < R; r++) {
            copy_row(h, r, hn, parent[r]);
            copy_row(c, r, cn, parent[r]);
            ((int32_t *)ids->data)[r] = ntok[r];
        }
    }
    rc = 0;
done:
    free(score), free(lp), free(nscore), free(fin), free(bw), free(nbw), free(parent);
    free(ntok), free(nfin), free(done), free(cs), free(ck), free(cv), free(aw), free(naw), free(wt);
    return rc;
}

typedef struct result {
    double loss;  /* mean cross-entropy per target word */
    double bleu;  /* corpus BLEU-4 x 100 */
    double exact; /* fraction of captions exactly right */
} result;

/* Loss and BLEU of the model on the scenes s (captions by beam search of
 * width K, 1: greedy); with hyp (s->n x MAX_WORDS) and hlen the captions
 * are kept. Returns 0 or -1 (message printed, starting with `what`). */
static int evaluate(tn_tape *tp, const model *m, const scenes *s, int K, bool length_norm,
                    const char *what, result *res, int32_t *hyp_out, int32_t *hlen_out)
{
    bool grad = tn_tape_set_grad(tp, false);
    int64_t n = s->n, tokens = 0;
    int32_t *hyp = hyp_out ? hyp_out : malloc(sizeof *hyp * (size_t)(n * MAX_WORDS));
    int32_t *hlen = hlen_out ? hlen_out : malloc(sizeof *hlen * (size_t)n);
    int64_t *idx = malloc(sizeof *idx * EVAL_BATCH);
    const int32_t **hp = malloc(sizeof *hp * (size_t)n), **rp = malloc(sizeof *rp * (size_t)n);
    double loss = 0;
    int rc = hyp && hlen && idx && hp && rp ? 0 : -1;
    if (rc)
        fprintf(stderr, PROG ": %s: out of memory\n", what);
    for (int64_t i0 = 0; rc == 0 && i0 < n; i0 += EVAL_BATCH) {
        int64_t B = n - i0 < EVAL_BATCH ? n - i0 : EVAL_BATCH, tok = 0;
        for (int64_t b = 0; b < B; b++)
            idx[b] = i0 + b;
        tn_tape_reset(tp);
        tn_tensor *l = caption_loss(tp, m, s, idx, B, TN_REDUCE_SUM, &tok);
        if (!l || decode(tp, m, s, idx, B, K, length_norm, hyp + i0 * MAX_WORDS, hlen + i0, NULL)) {
            fprintf(stderr, PROG ": %s: %s\n", what, tn_last_error());
            rc = -1;
            break;
        }
        if (!isfinite(tn_tensor_get(l, 0))) {
            fprintf(stderr,
                    PROG ": %s: the loss of scenes %" PRId64 "..%" PRId64 " is %g: the "
                         "model's output is not finite\n",
                    what, i0 + 1, i0 + B, tn_tensor_get(l, 0));
            rc = -1;
            break;
        }
        loss += tn_tensor_get(l, 0);
        tokens += tok;
    }
    if (rc == 0) {
        int64_t right = 0;
        for (int64_t i = 0; i < n; i++) {
            hp[i] = hyp + i * MAX_WORDS, rp[i] = s->words + i * MAX_WORDS;
            right +=
                hlen[i] == s->len[i] && memcmp(hp[i], rp[i], sizeof **hp * (size_t)hlen[i]) == 0;
        }
        res->loss = loss / (double)tokens;
        res->bleu = 100 * ex_bleu(n, hp, hlen, rp, s->len);
        res->exact = (double)right / (double)n;
        if (isnan(res->bleu)) {
            fprintf(stderr, PROG ": %s: out of memory\n", what);
            rc = -1;
        }
    }
    if (!hyp_out)
        free(hyp);
    if (!hlen_out)
        free(hlen);
    free(idx), free(hp), free(rp);
    tn_tape_reset(tp);
    tn_tape_set_grad(tp, grad);
    return rc;
}

/* ---- train ---- */

typedef struct cap_run {
    const model *m;
    const scenes *tr, *va;
    const opts *o;
    int64_t *idx; /* [B] */
    tn_rng rng;   /* the batches */
} cap_run;

static tn_tensor *cap_forward(void *ctx, tn_tape *tp, int64_t step)
{
    (void)step;
    cap_run *r = ctx;
    int64_t B = r->o->batch, tokens;
    for (int64_t b = 0; b < B; b++)
        r->idx[b] = (int64_t)(tn_rng_next(&r->rng) % (uint64_t)r->tr->n);
    return caption_loss(tp, r->m, r->tr, r->idx, B, TN_REDUCE_MEAN, &tokens);
}

static int cap_evaluate(void *ctx, tn_tape *tp, double *values)
{
    cap_run *r = ctx;
    result res;
    if (evaluate(tp, r->m, r->va, 1, false, "held-out scenes", &res, NULL, NULL))
        return -1;
    values[0] = res.loss, values[1] = res.bleu;
    return 0;
}

static int cap_save(void *ctx, tn_tape *tp, int64_t step)
{
    (void)tp;
    cap_run *r = ctx;
    return model_save(r->o->checkpoint, r->m, step);
}

/* The tn_attn_kind of an --attention value the parser accepted, or -1 for
 * "none". */
static int attention_kind(const char *name)
{
    tn_attn_kind kind;
    return strcmp(name, "none") && tn_attn_kind_from_name(name, &kind) == TN_OK ? (int)kind : -1;
}

static int cmd_train(const opts *o)
{
    if (attention_kind(o->attention) == TN_ATTN_LUONG_DOT && o->hidden != 4 * o->channels) {
        fprintf(stderr,
                PROG ": --attention luong (the dot product of h and an annotation) needs "
                     "--hidden = 4 x --channels, the annotations' size: %" PRId64
                     " against 4 x %" PRId64 "\n",
                o->hidden, o->channels);
        return 2;
    }
    if (ex_train_check_outputs(PROG, o->checkpoint, o->log, o->loss_log, o->curve))
        return 2;
    scenes tr, va;
    if (scenes_make(&tr, o->train_scenes, TRAIN_SEED))
        return 1;
    if (scenes_make(&va, o->val_scenes, VAL_SEED)) {
        scenes_free(&tr);
        return 1;
    }
    model m = {.embed = o->embed,
               .hidden = o->hidden,
               .channels = o->channels,
               .grid = o->grid,
               .attention = attention_kind(o->attention)};
    tn_tape *tp = NULL;
    tn_optim *opt = NULL;
    int64_t *idx = NULL;
    int rc = 1;
    if (words_build(&m.v) || model_build(&m, o->seed))
        goto done;
    tn_adam_opts ao = tn_adam_defaults();
    ao.lr = o->lr;
    opt = tn_optim_adam(&m.ps, &ao);
    tp = tn_tape_new();
    idx = malloc(sizeof *idx * (size_t)o->batch);
    if (!opt || !tp || !idx) {
        fprintf(stderr, PROG ": %s\n", tn_last_error()[0] ? tn_last_error() : "out of memory");
        goto done;
    }
    fprintf(stderr,
            PROG ": CNN %" PRId64 "-%" PRId64 "-%" PRId64 " channels, pool %" PRId64 "x%" PRId64
                 " (%" PRId64 " features) -> LSTM H=%" PRId64 " E=%" PRId64
                 "%s%s; %d words; %" PRId64 " train / %" PRId64 " held-out scenes; params %" PRId64
                 "; %d threads\n",
            o->channels, 2 * o->channels, 4 * o->channels, o->grid, o->grid, model_features(&m),
            o->hidden, o->embed, m.attention >= 0 ? ", attention " : "",
            m.attention >= 0 ? o->attention : "", m.v.n, tr.n, va.n, tn_params_numel(&m.ps),
            tn_num_threads());
    cap_run run = {.m = &m, .tr = &tr, .va = &va, .o = o, .idx = idx};
    tn_rng_seed(&run.rng, o->seed ^ DATA_SEED_MIX);
    static const ex_col cols[] = {{"val_loss", 4}, {"val_bleu", 2}};
    ex_train t = {.prog = PROG,
                  .tp = tp,
                  .ps = &m.ps,
                  .opt = opt,
                  .steps = o->steps,
                  .clip = o->clip,
                  .eval_every = o->eval_every,
                  .log = o->log,
                  .loss_log = o->loss_log,
                  .curve = o->curve,
                  .checkpoint = o->checkpoint,
                  .per_step = (double)o->batch,
                  .unit = "scenes",
                  .ctx = &run,
                  .forward = cap_forward,
                  .evaluate = cap_evaluate,
                  .save = o->checkpoint ? cap_save : NULL,
                  .cols = cols,
                  .n_cols = 2};
    rc = ex_train_run(&t);
done:
    free(idx);
    tn_optim_free(opt);
    tn_tape_free(tp);
    model_free(&m);
    scenes_free(&tr);
    scenes_free(&va);
    return rc;
}

/* ---- eval and caption ---- */

static int cmd_eval(const opts *o)
{
    model m;
    if (model_load(o->checkpoint, &m))
        return 1;
    scenes va;
    tn_tape *tp = tn_tape_new();
    if (!tp || scenes_make(&va, o->val_scenes, VAL_SEED)) {
        if (!tp)
            fprintf(stderr, PROG ": out of memory\n");
        else
            scenes_free(&va);
        tn_tape_free(tp);
        model_free(&m);
        return 1;
    }
    result g, bm;
    int rc = evaluate(tp, &m, &va, 1, false, o->checkpoint, &g, NULL, NULL);
    if (rc == 0 && o->beam > 1)
        rc = evaluate(tp, &m, &va, (int)o->beam, o->length_norm, o->checkpoint, &bm, NULL, NULL);
    if (rc == 0) {
        printf("loss %.6f\nbleu_greedy %.4f\nexact_greedy %.4f\n", g.loss, g.bleu, g.exact);
        if (o->beam > 1)
            printf("bleu_beam%d %.4f\nexact_beam%d %.4f\n", (int)o->beam, bm.bleu, (int)o->beam,
                   bm.exact);
        printf("scenes %" PRId64 "\n", va.n);
    }
    tn_tape_free(tp);
    scenes_free(&va);
    model_free(&m);
    return rc ? 1 : 0;
}

/* The colour (0..3) nearest to pixel i of img, or -1 when it is dark
 * (background). */
static int pixel_colour(const float *img, int i)
{
    float p[3] = {img[i], img[SIDE * SIDE + i], img[2 * SIDE * SIDE + i]};
    if (fmaxf(p[0], fmaxf(p[1], p[2])) < 0.45f)
        return -1;
    int best = 0;
    double be = INFINITY;
    for (int j = 0; j < 4; j++) {
        double e = 0;
        for (int k = 0; k < 3; k++)
            e += (p[k] - COLOUR[j][k]) * (p[k] - COLOUR[j][k]);
        if (e < be)
            be = e, best = j;
    }
    return best;
}

/* The scene img [3, SIDE, SIDE] as SIDE/2 lines of SIDE/2 letters, one per
 * 2x2 pixels: the colour (r g b y) of at least 2 of them, else '.'. */
static void print_scene(const float *img)
{
    for (int y = 0; y < SIDE; y += 2) {
        printf("    ");
        for (int x = 0; x < SIDE; x += 2) {
            int n[4] = {0, 0, 0, 0};
            char ch = '.';
            for (int d = 0; d < 4; d++) {
                int c = pixel_colour(img, (y + d / 2) * SIDE + x + d % 2);
                if (c >= 0 && ++n[c] == 2)
                    ch = "rgby"[c];
            }
            putchar(ch);
        }
        putchar('\n');
    }
}

/* Caption words w[0..n) printed with the model's vocabulary. */
static void print_words(const model *m, const int32_t *w, int32_t n)
{
    for (int32_t i = 0; i < n; i++)
        printf("%s%s", i ? " " : "", m->v.words[w[i]]);
}

/* The first scene of va, its caption by the model (greedy, or --beam) and
 * the attention weights of each step (its words and <eos>): printed as
 * text (the scene as print_scene, then per step the MAP_SIDE x MAP_SIDE
 * weights x 100, row 1 at the top, a cell for SIDE / MAP_SIDE pixels
 * square), and drawn into o->attention_map (ex_plot_heatmap): the scene's
 * brightness (its largest channel), then per step the weights over the
 * largest of all steps (1: black), each panel SIDE x SIDE, labelled with
 * the word.
 * Returns 0 or 1 (message printed). */
static int attention_map(const opts *o, const model *m, tn_tape *tp, const scenes *va)
{
    enum { CELL = SIDE / MAP_SIDE, PANEL = SIDE + 1 }; /* a blank column after each panel */
    int32_t w[MAX_WORDS], n = 0;
    double *a = calloc((size_t)(T_MAX * POS), sizeof *a);
    double *img = calloc((size_t)(SIDE * (T_MAX + 1) * PANEL), sizeof *img);
    const char *col[(T_MAX + 1) * PANEL], *row[SIDE];
    bool grad = tn_tape_set_grad(tp, false);
    tn_tape_reset(tp);
    int rc = a && img ? decode(tp, m, va, (int64_t[]){0}, 1, (int)o->beam, o->length_norm, w, &n, a)
                      : -1;
    tn_tape_reset(tp);
    tn_tape_set_grad(tp, grad);
    if (rc) {
        fprintf(stderr, PROG ": --attention-map: %s\n",
                a && img ? tn_last_error() : "out of memory");
        free(a), free(img);
        return 1;
    }
    int steps = n < MAX_WORDS ? n + 1 : n, panels = steps + 1, cols = panels * PANEL - 1;
    double top = 0;
    for (int i = 0; i < steps * POS; i++)
        top = fmax(top, a[i]);
    printf("# attention map of scene 1: \"");
    print_words(m, w, n);
    printf("\" (%s); the scene:\n", o->beam > 1 ? "beam search" : "greedy");
    print_scene(va->img);
    for (int i = 0; i < cols; i++)
        col[i] = "";
    for (int y = 0; y < SIDE; y++)
        row[y] = "";
    col[SIDE / 2] = "scene";
    for (int y = 0; y < SIDE; y++) /* the scene's brightness */
        for (int x = 0; x < SIDE; x++)
            for (int k = 0; k < 3; k++)
                img[y * cols + x] = fmax(img[y * cols + x], va->img[(k * SIDE + y) * SIDE + x]);
    for (int t = 0; t < steps; t++) {
        const double *at = a + t * POS;
        const char *word = t < n ? m->v.words[w[t]] : "<eos>";
        int best = 0;
        for (int i = 1; i < POS; i++)
            best = at[i] > at[best] ? i : best;
        printf("# step %d, \"%s\": attention weights x 100 (the largest %.1f at row %d, column "
               "%d)\n",
               t + 1, word, 100 * at[best], best / MAP_SIDE + 1, best % MAP_SIDE + 1);
        for (int i = 0; i < POS; i++)
            printf("%6.1f%s", 100 * at[i], i % MAP_SIDE == MAP_SIDE - 1 ? "\n" : "");
        int x0 = (t + 1) * PANEL;
        col[x0 + SIDE / 2] = word;
        for (int y = 0; y < SIDE; y++)
            for (int x = 0; x < SIDE; x++)
                img[y * cols + x0 + x] = top > 0 ? at[(y / CELL) * MAP_SIDE + x / CELL] / top : 0;
    }
    rc = ex_plot_heatmap(PROG, o->attention_map, img, SIDE, cols, row, col,
                         "the scene, and the attention weights of each word (the largest: "
                         "black)",
                         0, 1, 120 * panels + 120, 300) == PLOT_ERROR;
    free(a), free(img);
    return rc;
}

static int cmd_caption(const opts *o)
{
    if (o->attention_map && ex_check_output(PROG, "--attention-map", o->attention_map))
        return 2;
    model m;
    if (model_load(o->checkpoint, &m))
        return 1;
    if (o->attention_map && m.attention < 0) {
        fprintf(stderr,
                PROG ": --attention-map: --checkpoint %s has no attention (trained with "
                     "--attention none)\n",
                o->checkpoint);
        model_free(&m);
        return 2;
    }
    int64_t n = o->scenes;
    scenes va;
    tn_tape *tp = tn_tape_new();
    int32_t *hyp = malloc(sizeof *hyp * (size_t)(n * MAX_WORDS));
    int32_t *hlen = malloc(sizeof *hlen * (size_t)n);
    int rc = 1;
    if (!tp || !hyp || !hlen) {
        fprintf(stderr, PROG ": out of memory\n");
        free(hyp), free(hlen);
        tn_tape_free(tp);
        model_free(&m);
        return 1;
    }
    if (scenes_make(&va, n, VAL_SEED) == 0) {
        result res;
        if (evaluate(tp, &m, &va, (int)o->beam, o->length_norm, o->checkpoint, &res, hyp, hlen) ==
            0) {
            char how[32];
            snprintf(how, sizeof how, o->beam > 1 ? "beam %d" : "greedy", (int)o->beam);
            printf("# scene\ttrue caption\tmodel's caption (%s)\n", how);
            for (int64_t i = 0; i < n; i++) {
                printf("%" PRId64 "\t", i + 1);
                print_words(&m, va.words + i * MAX_WORDS, va.len[i]);
                putchar('\t');
                print_words(&m, hyp + i * MAX_WORDS, hlen[i]);
                putchar('\n');
                if (o->show)
                    print_scene(va.img + i * PIX);
            }
            printf("# %" PRId64 " scenes: %.0f%% exactly right, BLEU %.2f\n", n, 100 * res.exact,
                   res.bleu);
            rc = o->attention_map ? attention_map(o, &m, tp, &va) : 0;
        }
        scenes_free(&va);
    }
    free(hyp), free(hlen);
    tn_tape_free(tp);
    model_free(&m);
    return rc;
}

/* ---- gradcheck ---- */

typedef struct gc_ctx {
    const model *m;
    const scenes *s;
    int64_t idx[2];
} gc_ctx;

/* inputs: the model's parameters (in place) */
static tn_tensor *gc_loss(tn_tape *tp, tn_tensor *const *inputs, void *ctx)
{
    (void)inputs;
    gc_ctx *g = ctx;
    int64_t tokens;
    return caption_loss(tp, g->m, g->s, g->idx, 2, TN_REDUCE_MEAN, &tokens);
}

/* The captioner's loss (encoder, start, decoder, output layer, and the
 * attention of kind `attention`, -1: none) checked against central
 * differences in float64 on a small model: C `channels`, G 2, E 3, H 4, two
 * held-out scenes of va (one and two shapes). Returns 0, or 1 (failed or
 * an error; message printed). */
static int gradcheck_model(const opts *o, const scenes *va, int attention, int64_t channels)
{
    model m = {.embed = 3,
               .hidden = 4,
               .channels = channels,
               .grid = 2,
               .attention = attention,
               .dt = TN_F64};
    tn_tensor **in = NULL;
    int rc = 1;
    if (words_build(&m.v) || model_build(&m, o->seed))
        goto done;
    gc_ctx g = {.m = &m, .s = va, .idx = {0, 0}};
    for (int64_t i = 0; i < va->n; i++) /* the first scene of two shapes */
        if (va->len[i] > 4) {
            g.idx[1] = i;
            break;
        }
    int n = m.ps.n;
    if (!(in = malloc(sizeof *in * (size_t)n))) {
        fprintf(stderr, PROG ": out of memory\n");
        goto done;
    }
    for (int k = 0; k < n; k++)
        in[k] = m.ps.items[k].t;
    tn_gradcheck_result res;
    if (tn_gradcheck(gc_loss, &g, n, in, 1e-6, &res) != TN_OK) {
        fprintf(stderr, PROG ": gradcheck: %s\n", tn_last_error());
        goto done;
    }
    /* As custom_cell's: in float64 with eps 1e-6 right gradients differ by
     * ~1e-8 relative (floor 1e-2, gradcheck.h); a wrong one by far more. */
    const double tol = 1e-6;
    bool ok = res.max_rel_err <= tol;
    printf("gradcheck (float64, C=%" PRId64 " G=2 E=3 H=4, attention %s, 2 scenes): %" PRId64
           " elements, max abs error %.3g, max relative error %.3g at %s[%" PRId64
           "] (analytic %.9g, numeric %.9g): %s (tolerance %g)\n",
           channels, tn_attn_kind_name(attention), res.n_checked, res.max_abs_err, res.max_rel_err,
           m.ps.items[res.worst_input].name, res.worst_index, res.worst_analytic, res.worst_numeric,
           ok ? "ok" : "FAILED", tol);
    rc = ok ? 0 : 1;
done:
    free(in);
    model_free(&m);
    return rc;
}

/* gradcheck_model of the plain model and of each attention (C 2; luong,
 * the dot product, C 1: H 4 = 4C). */
static int cmd_gradcheck(const opts *o)
{
    scenes va;
    if (scenes_make(&va, 8, VAL_SEED))
        return 1;
    static const struct {
        int attention;
        int64_t channels;
    } runs[] = {{-1, 2}, {TN_ATTN_BAHDANAU, 2}, {TN_ATTN_LUONG_GENERAL, 2}, {TN_ATTN_LUONG_DOT, 1}};
    int rc = 0;
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++)
        rc |= gradcheck_model(o, &va, runs[i].attention, runs[i].channels);
    scenes_free(&va);
    return rc;
}

/* The model of --checkpoint alone (export.h), its parameters named as
 * the PyTorch module's state_dict (tools/torch_models.py); the metadata
 * keeps what caption needs to read it back. */
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

/* The held-out scenes eval scores (tools/torch_models.py computes eval's
 * loss on them), or with --split train the scenes train trains on
 * (tests/torch_caption.py trains on them): "images" [N, 3, SIDE, SIDE] and
 * "captions" [N, T_MAX], each caption's word ids, <eos>, then <pad>,
 * stored as float32 (tn_save writes floats; the ids are exact), with the
 * vocabulary in "words" and the split in "split". */
static int cmd_scenes(const opts *o)
{
    if (!o->out) {
        fprintf(stderr, PROG ": scenes needs --out\n");
        return 2;
    }
    if (ex_check_output(PROG, "--out", o->out))
        return 2;
    bool train = strcmp(o->split, "train") == 0;
    scenes va;
    if (scenes_make(&va, train ? o->train_scenes : o->val_scenes, train ? TRAIN_SEED : VAL_SEED))
        return 1;
    tn_params ps;
    tn_params_init(&ps);
    tn_meta meta;
    tn_meta_init(&meta);
    ex_words v = {0};
    char *words = words_build(&v) ? NULL : ex_words_join(&v);
    tn_tensor *img =
        tn_params_new(&ps, NULL, "images", TN_F32, 4, (int64_t[]){va.n, 3, SIDE, SIDE});
    tn_tensor *cap = tn_params_new(&ps, NULL, "captions", TN_F32, 2, (int64_t[]){va.n, T_MAX});
    tn_status s = words && img && cap ? TN_OK : TN_ERR_MEMORY;
    if (s == TN_OK) {
        memcpy(img->data, va.img, sizeof(float) * (size_t)(va.n * PIX));
        float *c = cap->data;
        for (int64_t i = 0; i < va.n; i++)
            for (int64_t t = 0; t < T_MAX; t++)
                c[i * T_MAX + t] = (float)(t < va.len[i]    ? va.words[i * MAX_WORDS + t]
                                           : t == va.len[i] ? EOS
                                                            : PAD);
        s = tn_meta_set(&meta, "format", "caption scenes 1");
        s = s ? s : tn_meta_set(&meta, "words", words);
        s = s ? s : tn_meta_set(&meta, "split", o->split);
        tn_params *sets[1] = {&ps};
        s = s ? s : tn_save(o->out, sets, 1, &meta);
    }
    if (s != TN_OK)
        fprintf(stderr, PROG ": --out %s: %s\n", o->out,
                s == TN_ERR_MEMORY ? "out of memory" : tn_last_error());
    else
        printf("wrote %s: %" PRId64 " %sscenes\n", o->out, va.n, train ? "training " : "");
    free(words);
    ex_words_free(&v);
    tn_meta_free(&meta);
    tn_params_free(&ps);
    scenes_free(&va);
    return s == TN_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    opts o;
    int command, rc = parse_opts(argc, argv, &o, &command);
    if (rc != EX_OK)
        return rc == EX_DONE ? 0 : 2;
    if ((command == 1 || command == 2) && !o.checkpoint) {
        fprintf(stderr, PROG ": %s needs --checkpoint\n", command == 1 ? "eval" : "caption");
        return 2;
    }
    if (ex_start(PROG, &argc, &argv, o.threads, false))
        return 1;
    rc = command == 0   ? cmd_train(&o)
         : command == 1 ? cmd_eval(&o)
         : command == 2 ? cmd_caption(&o)
         : command == 3 ? cmd_gradcheck(&o)
         : command == 4 ? cmd_export(&o)
                        : cmd_scenes(&o);
    ex_stop();
    return rc;
}
