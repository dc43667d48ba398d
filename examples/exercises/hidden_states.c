/* examples/exercises/hidden_states.c - what the hidden units of a trained char_rnn
 * model respond to (the visualisation of the hidden state that the lecture
 * notes offer at their close; the view of Karpathy's "The Unreasonable
 * Effectiveness of Recurrent Neural Networks").
 *
 * The model reads a text one character at a time from a zero state; after
 * each character it records the last layer's hidden state h (units
 * h0..h{H-1}) and, for an LSTM, its cell state c (c0..c{H-1}). Each unit's
 * activations are correlated (Pearson's r over the characters) with simple
 * features of the text read so far:
 *
 *   in_quotes   inside "double quotes" (the opening quote counts as inside)
 *   in_parens   inside (parentheses)
 *   line_pos    characters since the start of the line (0 after a newline)
 *   newline     the character is a newline
 *   word_pos    characters since the last space or newline
 *   uppercase   the character is an upper-case letter A-Z
 *
 * and the units are ranked by |r| per feature, so the interesting ones are
 * found, not guessed. A feature that is constant over the text (no quotes
 * at all) has no correlation and is said so.
 *
 * The HTML page (self-contained: inline CSS, no scripts, no external
 * resources) shows the ranking, then the text once per chosen unit with
 * each character's background coloured by the unit's activation after
 * reading it: red positive, blue negative, white zero, full colour at the
 * unit's largest |activation| over the text. Chosen units: --units, or by
 * default the best unit of each feature.
 *
 *   hidden_states --checkpoint PATH --out FILE.html [--text FILE]
 *                 [--encoding utf-8|latin-1] [--chars N] [--units LIST]
 *                 [--top N] [--threads N]
 * Without --text the text is char_rnn's generated training text (what
 * `char_rnn train` reads without --data). LIST: units separated by commas,
 * each h<k> or c<k> (k from 0; c for an LSTM only) or a bare k (= h<k>).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tensor/tensor.h>

#include "char_model.h"
#include "cli.h"

enum { N_FEATURES = 6, MAX_CHOSEN = 64 };

static const char *const FEATURES[N_FEATURES] = {"in_quotes", "in_parens", "line_pos",
                                                 "newline",   "word_pos",  "uppercase"};

/* The features after each of the n code points cps into f[k * n + i]. */
static void features_compute(const uint32_t *cps, int64_t n, double *f)
{
    bool quote = false;
    int64_t parens = 0, line = 0, word = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t c = cps[i];
        quote = c == '"' ? !quote : quote;
        parens += c == '(';
        if (c == ')' && parens > 0)
            parens--;
        line = c == '\n' ? 0 : line + 1;
        word = c == '\n' || c == ' ' ? 0 : word + 1;
        f[0 * n + i] = quote;
        f[1 * n + i] = parens > 0 || c == ')';
        f[2 * n + i] = (double)line;
        f[3 * n + i] = c == '\n';
        f[4 * n + i] = (double)word;
        f[5 * n + i] = c >= 'A' && c <= 'Z';
    }
}

/* Pearson's correlation of x and y (n values each); 0 when either is
 * constant. */
static double pearson(const double *x, const double *y, int64_t n)
{
    double mx = 0, my = 0;
    for (int64_t i = 0; i < n; i++)
        mx += x[i], my += y[i];
    mx /= (double)n, my /= (double)n;
    double sxy = 0, sxx = 0, syy = 0;
    for (int64_t i = 0; i < n; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : 0.0;
}

static bool constant(const double *x, int64_t n)
{
    for (int64_t i = 1; i < n; i++)
        if (x[i] != x[0])
            return false;
    return true;
}

/* Unit u's name: h<u> for u < H, c<u - H> after. */
static void unit_name(int64_t u, int64_t H, char *out, size_t cap)
{
    snprintf(out, cap, "%c%" PRId64, u < H ? 'h' : 'c', u < H ? u : u - H);
}

/* --units: units separated by commas, h<k>, c<k> or k; into chosen (at
 * most MAX_CHOSEN), their number into *n. U = H or 2H (LSTM). Returns 0 or
 * -1 (message printed). */
static int units_parse(const char *list, int64_t H, int64_t U, int64_t *chosen, int *n)
{
    *n = 0;
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char tok[32] = {0};
        if (len == 0 || len >= sizeof tok) {
            fprintf(stderr, "hidden_states: --units '%s': an empty or overlong item\n", list);
            return -1;
        }
        memcpy(tok, p, len);
        int64_t base = 0;
        const char *num = tok;
        if (tok[0] == 'h' || tok[0] == 'c')
            base = tok[0] == 'c' ? H : 0, num = tok + 1;
        char *rest;
        long long k = *num >= '0' && *num <= '9' ? strtoll(num, &rest, 10) : -1;
        if (k < 0 || *rest || k >= H) {
            fprintf(stderr,
                    "hidden_states: --units: '%s' is not a unit (h<k>, c<k> or k with k from 0 "
                    "to %" PRId64 ")\n",
                    tok, H - 1);
            return -1;
        }
        if (base + k >= U) {
            fprintf(stderr, "hidden_states: --units: '%s': only an LSTM has a cell state\n", tok);
            return -1;
        }
        if (*n == MAX_CHOSEN) {
            fprintf(stderr, "hidden_states: --units: at most %d units\n", MAX_CHOSEN);
            return -1;
        }
        chosen[(*n)++] = base + k;
        p += len + (end != NULL);
    }
    if (*n == 0) {
        fprintf(stderr, "hidden_states: --units is empty\n");
        return -1;
    }
    return 0;
}

/* The activations after each of the n ids: act[i * U + u], u < H the last
 * layer's h, H <= u < 2H its c (LSTM). Returns 0 or -1 (message printed,
 * naming checkpoint when an activation is not finite: the correlations of a
 * broken model would be meaningless). */
static int activations(ex_lm_model *m, const char *checkpoint, const int32_t *ids, int64_t n,
                       double *act)
{
    int64_t H = m->lm.o.hidden, L = m->lm.o.layers;
    bool lstm = m->lm.o.cell == TN_CELL_LSTM;
    int64_t U = lstm ? 2 * H : H;
    float *logits = malloc(sizeof *logits * (size_t)m->lm.o.vocab);
    if (!logits || ex_lm_reset_state(m, 1)) {
        fprintf(stderr, "hidden_states: out of memory\n");
        free(logits);
        return -1;
    }
    for (int64_t i = 0; i < n; i++) { /* one character at a time (tn_lm_step) */
        if (tn_lm_step(&m->lm, m->st, &ids[i], logits) != TN_OK) {
            fprintf(stderr, "hidden_states: %s\n", tn_last_error());
            free(logits);
            return -1;
        }
        for (int64_t j = 0; j < H; j++) /* the state after the step: [L, 1, H] */
            act[i * U + j] = tn_tensor_get(m->st->h, (L - 1) * H + j);
        for (int64_t j = 0; lstm && j < H; j++)
            act[i * U + H + j] = tn_tensor_get(m->st->c, (L - 1) * H + j);
        for (int64_t u = 0; u < U; u++)
            if (!isfinite(act[i * U + u])) {
                char name[32];
                unit_name(u, H, name, sizeof name);
                fprintf(stderr,
                        "hidden_states: %s: unit %s is %g after character %" PRId64
                        ": the model's output is not finite\n",
                        checkpoint, name, act[i * U + u], i);
                free(logits);
                return -1;
            }
    }
    free(logits);
    return 0;
}

/* One code point into f, HTML-escaped (&, <, >, "). */
static void html_char(FILE *f, uint32_t cp)
{
    switch (cp) {
    case '&': fputs("&amp;", f); return;
    case '<': fputs("&lt;", f); return;
    case '>': fputs("&gt;", f); return;
    case '"': fputs("&quot;", f); return;
    default: {
        char enc[4];
        fwrite(enc, 1, (size_t)ex_utf8_encode(cp, enc), f);
    }
    }
}

static void html_string(FILE *f, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n;)
        html_char(f, ex_utf8_next((const unsigned char *)s, n, &i));
}

/* Background colour of activation a on a scale where |a| = scale is full
 * colour: red for positive, blue for negative, white for 0. */
static void html_colour(FILE *f, double a, double scale)
{
    double v = scale > 0 ? a / scale : 0;
    v = v > 1 ? 1 : v < -1 ? -1 : v;
    int fade = (int)lround(255 * (1 - fabs(v)));
    if (v >= 0)
        fprintf(f, "#ff%02x%02x", fade, fade);
    else
        fprintf(f, "#%02x%02xff", fade, fade);
}

typedef struct ranking {
    int64_t U, H, top;
    double *r;      /* [N_FEATURES, U]: r[k * U + u] */
    int64_t *order; /* [N_FEATURES, U]: per feature, the units by |r|, largest first */
    bool constant[N_FEATURES];
} ranking;

static const double *sort_key; /* for cmp_abs_desc: the r of one feature */

static int cmp_abs_desc(const void *a, const void *b)
{
    double x = fabs(sort_key[*(const int64_t *)a]), y = fabs(sort_key[*(const int64_t *)b]);
    return x < y ? 1 : x > y ? -1 : 0;
}

static void ranking_compute(ranking *rk, const double *act, const double *feat, int64_t n)
{
    int64_t U = rk->U;
    double *col = malloc(sizeof *col * (size_t)n);
    for (int64_t u = 0; u < U; u++) {
        for (int64_t i = 0; i < n; i++)
            col[i] = act[i * U + u];
        for (int k = 0; k < N_FEATURES; k++)
            rk->r[k * U + u] = pearson(col, feat + k * n, n);
    }
    free(col);
    for (int k = 0; k < N_FEATURES; k++) {
        rk->constant[k] = constant(feat + k * n, n);
        for (int64_t u = 0; u < U; u++)
            rk->order[k * U + u] = u;
        sort_key = rk->r + k * U;
        qsort(rk->order + k * U, (size_t)U, sizeof(int64_t), cmp_abs_desc);
    }
}

/* The ranking, one line per feature, as text (f = stdout) or HTML rows. */
static void ranking_print(FILE *f, const ranking *rk, bool html)
{
    for (int k = 0; k < N_FEATURES; k++) {
        fprintf(f, html ? "<tr><td>%s</td><td>" : "%-11s ", FEATURES[k]);
        if (rk->constant[k])
            fputs("constant in this text: no correlation", f);
        for (int64_t j = 0; !rk->constant[k] && j < rk->top && j < rk->U; j++) {
            int64_t u = rk->order[k * rk->U + j];
            char name[32];
            unit_name(u, rk->H, name, sizeof name);
            fprintf(f, html ? "%s%s %+.3f" : "%s%6s %+.3f", j ? "  " : "", name,
                    rk->r[k * rk->U + u]);
        }
        fputs(html ? "</td></tr>\n" : "\n", f);
    }
}

static int html_write(const char *path, const char *checkpoint, const ex_lm_model *m,
                      const ranking *rk, const uint32_t *cps, int64_t n, const double *act,
                      const int64_t *chosen, int n_chosen)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "hidden_states: cannot write --out %s\n", path);
        return -1;
    }
    int64_t U = rk->U;
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<title>hidden states of ",
          f);
    html_string(f, checkpoint);
    fputs("</title>\n<style>\n"
          "body { font-family: sans-serif; margin: 2em; max-width: 70em; }\n"
          "td { padding: 0 1em 0 0; font-family: monospace; }\n"
          ".text { font-family: monospace; white-space: pre-wrap; line-height: 1.6; "
          "border: 1px solid #ccc; padding: 0.5em; }\n"
          "</style>\n</head>\n<body>\n<h1>Hidden states of ",
          f);
    html_string(f, checkpoint);
    fprintf(f,
            "</h1>\n<p>%s, %" PRId64 " layer%s of %" PRId64 " units; the last layer's "
            "hidden state h%s after each of %" PRId64 " characters.</p>\n",
            tn_cell_name(m->lm.o.cell), (int64_t)m->lm.o.layers, m->lm.o.layers > 1 ? "s" : "",
            m->lm.o.hidden, m->lm.o.cell == TN_CELL_LSTM ? " and cell state c" : "", n);
    fputs("<h2>Units by |correlation| with features of the text</h2>\n<table>\n", f);
    ranking_print(f, rk, true);
    fputs("</table>\n<p>Below, each character's background is the unit's activation after "
          "reading it: red positive, blue negative, white zero, full colour at the unit's "
          "largest |activation| over the text. A newline is shown as &#8629;.</p>\n",
          f);
    for (int j = 0; j < n_chosen; j++) {
        int64_t u = chosen[j];
        double scale = 0;
        for (int64_t i = 0; i < n; i++)
            scale = fmax(scale, fabs(act[i * U + u]));
        char name[32];
        unit_name(u, rk->H, name, sizeof name);
        fprintf(f, "<h2>%s</h2>\n<p>", name);
        for (int k = 0; k < N_FEATURES; k++)
            if (!rk->constant[k])
                fprintf(f, "%s r = %+.3f; ", FEATURES[k], rk->r[k * U + u]);
        fprintf(f, "largest |activation| %.4g</p>\n<div class=\"text\">", scale);
        for (int64_t i = 0; i < n; i++) {
            fputs("<span style=\"background:", f);
            html_colour(f, act[i * U + u], scale);
            fputs("\">", f);
            if (cps[i] == '\n')
                fputs("&#8629;</span>\n", f);
            else {
                html_char(f, cps[i]);
                fputs("</span>", f);
            }
        }
        fputs("</div>\n", f);
    }
    fputs("</body>\n</html>\n", f);
    if (fclose(f) != 0) {
        fprintf(stderr, "hidden_states: cannot write --out %s\n", path);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *checkpoint = NULL, *out = NULL, *text_path = NULL, *encoding = "utf-8";
    const char *units = NULL;
    int64_t chars = 2000, top = 5, threads = 1;
    const ex_opt table[] = {
        {"--checkpoint", EX_STRING, &checkpoint, "PATH", "a char_rnn checkpoint (required)",
         .def = "none"},
        {"--out", EX_STRING, &out, "FILE", "the HTML page to write (required)", .def = "none"},
        {"--text", EX_STRING, &text_path, "FILE", "the text to read",
         .def = "char_rnn's generated training text"},
        {"--encoding", EX_CHOICE, &encoding, "ENC", "of --text", .choices = "utf-8|latin-1"},
        {"--chars", EX_INT, &chars, "N", "characters of the text read (from its start)", .imin = 2,
         .imax = 1000000},
        {"--units", EX_STRING, &units, "LIST", "units to show, e.g. h3,c17 (c: LSTM cell state)",
         .def = "the best unit of each feature"},
        {"--top", EX_INT, &top, "N", "units listed per feature", .imin = 1, .imax = 1000},
        {"--threads", EX_INT, &threads, "N", "threads", .imin = 1, .imax = 1024},
    };
    const ex_spec spec = {
        .prog = "hidden_states",
        .summary = "which hidden units of a char_rnn model follow quotes, line position, "
                   "newlines...: a ranking by correlation and an HTML page colouring the text "
                   "by their activations (the lecture notes' hidden-state visualisation)",
        .opts = table,
        .n_opts = (int)(sizeof table / sizeof table[0])};
    int rc = ex_parse(&spec, argc, argv, NULL);
    if (rc != EX_OK)
        return rc == EX_DONE ? 0 : 2;
    if (!checkpoint || !out) {
        fprintf(stderr, "hidden_states: --checkpoint PATH and --out FILE.html are required\n");
        return 2;
    }
    if (ex_check_output("hidden_states", "--out", out))
        return 2;
    FILE *probe = fopen(checkpoint, "rb"); /* the loader's own message would say char_rnn */
    if (!probe) {
        fprintf(stderr, "hidden_states: --checkpoint %s: %s\n", checkpoint, strerror(errno));
        return 1;
    }
    fclose(probe);
    if (ex_runtime("hidden_states", threads))
        return 1;

    /* the text first: a bad file is refused before the model is loaded */
    char *bytes;
    size_t nbytes;
    if (text_path) {
        if (ex_read_text("hidden_states", "--text", text_path, encoding, &bytes, &nbytes))
            return 1;
    } else {
        int64_t gn;
        bytes = (char *)ex_generated_text(&gn);
        nbytes = (size_t)gn;
    }
    uint32_t *cps = malloc(sizeof *cps * (nbytes > 0 ? nbytes : 1));
    int64_t n =
        cps ? ex_utf8_decode((const unsigned char *)bytes, (int64_t)nbytes, cps, (int64_t)nbytes)
            : 0;
    free(bytes);
    n = n < chars ? n : chars;
    if (n < 2) {
        fprintf(stderr, "hidden_states: --text %s has fewer than 2 characters\n",
                text_path ? text_path : "(generated)");
        free(cps);
        return 1;
    }
    ex_lm_model m;
    ex_text t = {0};
    if (ex_char_load_model(checkpoint, &m, &t)) {
        free(cps);
        return 1;
    }
    int64_t H = m.lm.o.hidden, U = m.lm.o.cell == TN_CELL_LSTM ? 2 * H : H;
    int32_t *ids = malloc(sizeof *ids * (size_t)n);
    double *act = malloc(sizeof *act * (size_t)(n * U));
    double *feat = malloc(sizeof *feat * (size_t)(n * N_FEATURES));
    ranking rk = {.U = U, .H = H, .top = top};
    rk.r = malloc(sizeof *rk.r * (size_t)(N_FEATURES * U));
    rk.order = malloc(sizeof *rk.order * (size_t)(N_FEATURES * U));
    if (!ids || !act || !feat || !rk.r || !rk.order) {
        fprintf(stderr, "hidden_states: out of memory\n");
        return 1;
    }
    rc = 0;
    for (int64_t i = 0; i < n && !rc; i++) {
        ids[i] = ex_text_index(&t, cps[i]);
        if (ids[i] < 0) {
            char enc[5] = {0};
            ex_utf8_encode(cps[i], enc);
            fprintf(stderr,
                    "hidden_states: %s: character '%s' (U+%04X) at position %" PRId64
                    " is not in the vocabulary of %s\n",
                    text_path ? text_path : "the generated text", enc, (unsigned)cps[i], i,
                    checkpoint);
            rc = 1;
        }
    }
    int64_t chosen[MAX_CHOSEN];
    int n_chosen = 0;
    if (!rc && units && units_parse(units, H, U, chosen, &n_chosen))
        rc = 2;
    if (!rc && activations(&m, checkpoint, ids, n, act))
        rc = 1;
    if (!rc) {
        features_compute(cps, n, feat);
        ranking_compute(&rk, act, feat, n);
        char cs[48] = "";
        if (m.lm.o.cell == TN_CELL_LSTM)
            snprintf(cs, sizeof cs, " and cell state c0..c%" PRId64, H - 1);
        printf("%s: %s, %" PRId64 " layer%s of %" PRId64 " units; the last layer's h0..h%" PRId64
               "%s over %" PRId64 " characters\n\n",
               checkpoint, tn_cell_name(m.lm.o.cell), (int64_t)m.lm.o.layers,
               m.lm.o.layers > 1 ? "s" : "", H, H - 1, cs, n);
        printf("feature     units by |correlation| (Pearson r)\n");
        ranking_print(stdout, &rk, false);
        if (!units) /* the best unit of each feature, once each */
            for (int k = 0; k < N_FEATURES; k++) {
                int64_t u = rk.order[k * U];
                bool seen = rk.constant[k];
                for (int j = 0; j < n_chosen && !seen; j++)
                    seen = chosen[j] == u;
                if (!seen)
                    chosen[n_chosen++] = u;
            }
        if (html_write(out, checkpoint, &m, &rk, cps, n, act, chosen, n_chosen))
            rc = 1;
        else
            printf("\npage: %s (%d unit%s)\n", out, n_chosen, n_chosen == 1 ? "" : "s");
    }
    free(rk.r);
    free(rk.order);
    free(feat);
    free(act);
    free(ids);
    free(cps);
    ex_lm_free(&m);
    return rc;
}
