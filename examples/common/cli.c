/* examples/common/cli.c - the examples' command-line helper (contracts in cli.h). */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <tensor/tensor.h>

/* ---- describing options ---- */

/* What the option accepts, e.g. "an integer from 1 to 16384". */
static void describe(const ex_opt *o, char *buf, size_t cap)
{
    switch (o->type) {
    case EX_INT:
        snprintf(buf, cap, "an integer from %" PRId64 " to %" PRId64, o->imin, o->imax);
        break;
    case EX_UINT64: snprintf(buf, cap, "an integer from 0 to %" PRIu64, UINT64_MAX); break;
    case EX_REAL:
        snprintf(buf, cap, "a number %s %g and %s %g", o->dmin_open ? ">" : ">=", o->dmin,
                 o->dmax_open ? "<" : "<=", o->dmax);
        break;
    case EX_CHOICE: snprintf(buf, cap, "one of %s", o->choices); break;
    case EX_STRING: snprintf(buf, cap, "%s", o->arg ? o->arg : "text"); break;
    case EX_FLAG: snprintf(buf, cap, "no value"); break;
    }
}

/* The current value as --help shows it (the default, before parsing). */
static void value_str(const ex_opt *o, char *buf, size_t cap)
{
    if (o->def) {
        snprintf(buf, cap, "%s", o->def);
        return;
    }
    switch (o->type) {
    case EX_FLAG: snprintf(buf, cap, "%s", *(bool *)o->value ? "on" : "off"); break;
    case EX_STRING:
    case EX_CHOICE: {
        const char *s = *(const char **)o->value;
        snprintf(buf, cap, "%s", s ? (*s ? s : "\"\"") : "none");
        break;
    }
    case EX_INT: snprintf(buf, cap, "%" PRId64, *(int64_t *)o->value); break;
    case EX_UINT64: snprintf(buf, cap, "%" PRIu64, *(uint64_t *)o->value); break;
    case EX_REAL: snprintf(buf, cap, "%g", *(double *)o->value); break;
    }
}

static bool of_command(const ex_opt *o, int command)
{
    return o->commands == 0 || (o->commands >> command & 1u);
}

/* Short aliases of the common options, for every program that has them. */
static const struct {
    char c;
    const char *name;
} aliases[] = {{'c', "--checkpoint"}, {'d', "--data"}, {'s', "--steps"}, {'t', "--threads"},
               {'o', "--out"},        {'l', "--log"},  {'b', "--batch"}, {'p', "--plot"}};

/* The short alias of the option named name ('\0': none). */
static char alias_of(const char *name)
{
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(aliases[i].name, name) == 0)
            return aliases[i].c;
    return '\0';
}

/* The option named name[0..len) of command (one of another command when
 * the command has none of that name, for the message), or NULL. */
static const ex_opt *find_opt(const ex_spec *spec, const char *name, size_t len, int command)
{
    const ex_opt *other = NULL;
    for (int k = 0; k < spec->n_opts; k++) {
        const ex_opt *o = &spec->opts[k];
        if (strncmp(o->name, name, len) != 0 || o->name[len] != '\0')
            continue;
        if (of_command(o, command))
            return o;
        other = other ? other : o;
    }
    return other;
}

static void print_options(const ex_spec *spec, int command)
{
    for (int i = 0; i < spec->n_opts; i++) {
        const ex_opt *o = &spec->opts[i];
        if (!of_command(o, command))
            continue;
        char head[64], range[128] = "", def[128], sc = alias_of(o->name), al[8] = "";
        if (sc)
            snprintf(al, sizeof al, "-%c, ", sc);
        snprintf(head, sizeof head, "%s%s%s%s", al, o->name, o->arg ? " " : "",
                 o->arg ? o->arg : "");
        if (o->type == EX_INT || o->type == EX_REAL || o->type == EX_CHOICE) {
            describe(o, range, sizeof range);
            memmove(range + 2, range, strlen(range) + 1);
            memcpy(range, "; ", 2);
        }
        value_str(o, def, sizeof def);
        printf("  %-20s %s (default: %s%s)\n", head, o->help, def, range);
    }
}

static void print_help(const ex_spec *spec, int command)
{
    printf("%s (tensor %s): %s\n\n", spec->prog, TN_VERSION_STRING, spec->summary);
    if (!spec->commands) {
        printf("usage: %s [options]\n\noptions:\n", spec->prog);
        print_options(spec, 0);
    } else {
        printf("usage: %s COMMAND [options]\n\ncommands:\n", spec->prog);
        for (int c = 0; spec->commands[c]; c++)
            printf("  %-8s %s\n", spec->commands[c], spec->command_help[c]);
        for (int c = 0; spec->commands[c]; c++)
            if (command < 0 || command == c) {
                printf("\noptions of %s %s:\n", spec->prog, spec->commands[c]);
                print_options(spec, c);
            }
    }
    printf("\n  %-20s %s\n  %-20s %s\n  %-20s %s\n", "-h, --help", "print this help and exit",
           "--version", "print the version and exit", "--", "end of the options");
    if (spec->notes)
        printf("\n%s", spec->notes);
    printf("\nExit status:\n%s",
           spec->exit_status ? spec->exit_status
                             : "  0  done (also for --help and --version)\n"
                               "  1  failed while running: a file, the data, the model, the "
                               "numbers or memory (the message says which)\n"
                               "  2  bad arguments: an unknown command or option, a value out "
                               "of range, an output that cannot be written\n");
}

/* ---- parsing values ---- */

static int refuse(const ex_spec *spec, const ex_opt *o, const char *v, const char *why)
{
    char range[128];
    describe(o, range, sizeof range);
    fprintf(stderr, "%s: %s '%s' %s (allowed: %s)\n", spec->prog, o->name, v, why, range);
    return EX_USAGE;
}

static int set_value(const ex_spec *spec, const ex_opt *o, const char *v)
{
    char *end = NULL;
    /* strto* skip leading blanks: a value must start with its number */
    bool starts_ok = v && *v && !(*v == ' ' || *v == '\t' || *v == '\n');
    errno = 0;
    switch (o->type) {
    case EX_FLAG: *(bool *)o->value = true; return EX_OK;
    case EX_STRING: *(const char **)o->value = v; return EX_OK;
    case EX_CHOICE: {
        size_t n = strlen(v);
        for (const char *c = o->choices; *c;) {
            size_t k = strcspn(c, "|");
            if (n && k == n && memcmp(c, v, n) == 0) {
                *(const char **)o->value = v;
                return EX_OK;
            }
            c += k + (c[k] == '|');
        }
        return refuse(spec, o, v, "is not a choice");
    }
    case EX_INT: {
        long long x = strtoll(v, &end, 10);
        if (!starts_ok || *end)
            return refuse(spec, o, v, "is not a whole number");
        if (errno == ERANGE || x < o->imin || x > o->imax)
            return refuse(spec, o, v, "is out of range");
        *(int64_t *)o->value = x;
        return EX_OK;
    }
    case EX_UINT64: {
        if (*v == '-' || *v == '+')
            return refuse(spec, o, v, "is out of range");
        unsigned long long x = strtoull(v, &end, 10);
        if (!starts_ok || *end)
            return refuse(spec, o, v, "is not a whole number");
        if (errno == ERANGE)
            return refuse(spec, o, v, "is out of range");
        *(uint64_t *)o->value = x;
        return EX_OK;
    }
    case EX_REAL: {
        double x = strtod(v, &end);
        if (!starts_ok || *end || isnan(x))
            return refuse(spec, o, v, "is not a number");
        if (!isfinite(x) || (errno == ERANGE && x != 0) || x < o->dmin || x > o->dmax ||
            (o->dmin_open && x == o->dmin) || (o->dmax_open && x == o->dmax))
            return refuse(spec, o, v, "is out of range");
        *(double *)o->value = x;
        return EX_OK;
    }
    }
    return EX_USAGE;
}

static int find_command(const ex_spec *spec, const char *name)
{
    for (int c = 0; spec->commands[c]; c++)
        if (strcmp(spec->commands[c], name) == 0)
            return c;
    return -1;
}

static void list_commands(const ex_spec *spec)
{
    for (int c = 0; spec->commands[c]; c++)
        fprintf(stderr, "%s%s", c ? ", " : "", spec->commands[c]);
}

int ex_parse(const ex_spec *spec, int argc, char **argv, int *command)
{
    int cmd = 0, first = 1;
    if (spec->commands) {
        const char *c = argc > 1 ? argv[1] : "";
        if (strcmp(c, "-h") == 0 || strcmp(c, "--help") == 0) {
            print_help(spec, -1);
            return EX_DONE;
        }
        if (strcmp(c, "--version") == 0) {
            printf("%s %s (libtensor %s)\n", spec->prog, TN_VERSION_STRING, tn_version());
            return EX_DONE;
        }
        cmd = find_command(spec, c);
        if (cmd < 0) {
            if (*c)
                fprintf(stderr, "%s: unknown command '%s' (commands: ", spec->prog, c);
            else
                fprintf(stderr, "%s: no command given (commands: ", spec->prog);
            list_commands(spec);
            fprintf(stderr, "; see %s --help)\n", spec->prog);
            return EX_USAGE;
        }
        first = 2;
    }
    if (command)
        *command = cmd;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            print_help(spec, cmd);
            return EX_DONE;
        }
        if (strcmp(a, "--version") == 0) {
            printf("%s %s (libtensor %s)\n", spec->prog, TN_VERSION_STRING, tn_version());
            return EX_DONE;
        }
        const char *cmd_name = spec->commands ? spec->commands[cmd] : "";
        if (strcmp(a, "--") == 0) { /* the end of the options: the programs take no operands */
            if (i + 1 < argc) {
                fprintf(stderr, "%s: unexpected argument '%s' after -- (see %s%s%s --help)\n",
                        spec->prog, argv[i + 1], spec->prog, *cmd_name ? " " : "", cmd_name);
                return EX_USAGE;
            }
            break;
        }
        for (size_t k = 0; a[0] == '-' && a[1] && !a[2] && k < sizeof aliases / sizeof aliases[0];
             k++)
            if (aliases[k].c == a[1]) /* -c PATH: --checkpoint PATH */
                a = aliases[k].name;
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        const ex_opt *o = find_opt(spec, a, len, cmd);
        if (!o || strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "%s: unknown %s '%s' (see %s%s%s --help)\n", spec->prog,
                    a[0] == '-' ? "option" : "argument", a, spec->prog, *cmd_name ? " " : "",
                    cmd_name);
            return EX_USAGE;
        }
        if (!of_command(o, cmd)) {
            fprintf(stderr, "%s: %s is not an option of '%s' (see %s %s --help)\n", spec->prog,
                    o->name, cmd_name, spec->prog, cmd_name);
            return EX_USAGE;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (o->type == EX_FLAG && v) {
            fprintf(stderr, "%s: %s takes no value (got '%s')\n", spec->prog, o->name, v);
            return EX_USAGE;
        }
        if (o->type != EX_FLAG && !v) {
            /* the next argument, unless it is the next option */
            if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
                v = argv[++i];
            if (!v) {
                char what[128];
                describe(o, what, sizeof what);
                fprintf(stderr, "%s: %s needs a value (%s)\n", spec->prog, o->name, what);
                return EX_USAGE;
            }
        }
        int rc = set_value(spec, o, v);
        if (rc != EX_OK)
            return rc;
    }
    return EX_OK;
}

/* ---- files ---- */

int ex_read_file(const char *prog, const char *opt, const char *path, unsigned char **buf,
                 size_t *n)
{
    struct stat st;
    FILE *f = NULL;
    if (stat(path, &st) != 0 || !(f = fopen(path, "rb"))) {
        fprintf(stderr, "%s: %s %s: %s\n", prog, opt, path, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        fprintf(stderr, "%s: %s %s: is a directory, not a file\n", prog, opt, path);
        fclose(f);
        return -1;
    }
    size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 65536, len = 0;
    unsigned char *b = malloc(cap);
    while (b) {
        len += fread(b + len, 1, cap - len, f);
        if (len < cap || ferror(f))
            break;
        unsigned char *nb = realloc(b, cap * 2);
        if (!nb)
            free(b);
        b = nb, cap *= 2;
    }
    int err = ferror(f) ? errno : 0;
    fclose(f);
    if (!b || err) {
        fprintf(stderr, "%s: %s %s: %s\n", prog, opt, path, b ? strerror(err) : "out of memory");
        free(b);
        return -1;
    }
    *buf = b;
    *n = len;
    return 0;
}

int ex_check_output(const char *prog, const char *opt, const char *path)
{
    struct stat st;
    if (!*path) {
        fprintf(stderr, "%s: %s: empty path\n", prog, opt);
        return -1;
    }
    bool exists = stat(path, &st) == 0;
    if (exists && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "%s: %s %s: is a directory (give a file path)\n", prog, opt, path);
        return -1;
    }
    /* the directory part of path ("." when there is none) */
    const char *slash = strrchr(path, '/');
    size_t dlen = !slash ? 0 : slash == path ? 1 : (size_t)(slash - path);
    char *probe = malloc(dlen + strlen(prog) + 32);
    if (!probe) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return -1;
    }
    if (dlen)
        memcpy(probe, path, dlen);
    else
        probe[dlen++] = '.';
    probe[dlen] = '\0';
    int rc = 0;
    const char *why = stat(probe, &st) != 0  ? strerror(errno)
                      : !S_ISDIR(st.st_mode) ? "is not a directory"
                                             : NULL;
    if (why) {
        fprintf(stderr, "%s: %s %s: directory %s: %s\n", prog, opt, path, probe, why);
        free(probe);
        return -1;
    }
    sprintf(probe + dlen, "/.%s-probe-XXXXXX", prog);
    int fd = mkstemp(probe);
    if (fd < 0) {
        probe[dlen] = '\0';
        fprintf(stderr, "%s: %s %s: cannot create files in %s: %s\n", prog, opt, path, probe,
                strerror(errno));
        rc = -1;
    } else {
        close(fd);
        unlink(probe);
    }
    if (rc == 0 && exists && (fd = open(path, O_WRONLY | O_CLOEXEC)) < 0) {
        fprintf(stderr, "%s: %s %s: %s\n", prog, opt, path, strerror(errno));
        rc = -1;
    } else if (rc == 0 && exists) {
        close(fd);
    }
    free(probe);
    return rc;
}

int ex_check_range(const char *prog, const char *path, const char *key, int64_t v, int64_t lo,
                   int64_t hi, const char *what)
{
    if (v >= lo && v <= hi)
        return 0;
    fprintf(stderr,
            "%s: %s: metadata \"%s\" is %" PRId64 ", outside %" PRId64 "..%" PRId64
            " (%s): cannot resume from it\n",
            prog, path, key, v, lo, hi, what);
    return -1;
}

int ex_check_shapes(const char *prog, const char *path, const char *sizes, const ex_shape *want,
                    int n)
{
    tn_ckpt_entry *ents = NULL;
    int ne = 0;
    if (tn_load_list(path, &ents, &ne) != TN_OK) {
        fprintf(stderr, "%s: %s\n", prog, tn_last_error());
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const tn_ckpt_entry *e = NULL;
        for (int j = 0; j < ne && !e; j++)
            if (strcmp(ents[j].name, want[i].name) == 0)
                e = &ents[j];
        if (e && e->ndim == 2 && e->shape[0] == want[i].rows && e->shape[1] == want[i].cols)
            continue;
        char has[96] = "no such tensor";
        if (e) {
            int at = snprintf(has, sizeof has, "[");
            for (int d = 0; d < e->ndim && at < (int)sizeof has; d++)
                at += snprintf(has + at, sizeof has - (size_t)at, "%s%" PRId64, d ? ", " : "",
                               e->shape[d]);
            if (at < (int)sizeof has)
                snprintf(has + at, sizeof has - (size_t)at, "]");
        }
        fprintf(stderr,
                "%s: %s: metadata (%s) needs tensor %s of [%" PRId64 ", %" PRId64
                "]; the file has %s\n",
                prog, path, sizes, want[i].name, want[i].rows, want[i].cols, has);
        rc = -1;
    }
    tn_ckpt_entries_free(ents, ne);
    return rc;
}

/* ---- text encodings ---- */

int64_t ex_utf8_invalid_at(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len = c >= 0xc2 && c <= 0xdf   ? 2
                     : c >= 0xe0 && c <= 0xef ? 3
                     : c >= 0xf0 && c <= 0xf4 ? 4
                                              : 0;
        if (len == 0 || i + len > n)
            return (int64_t)i;
        /* the second byte's range excludes overlongs, surrogates, > U+10FFFF */
        unsigned lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
        unsigned hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return (int64_t)i;
        for (size_t j = 2; j < len; j++)
            if ((s[i + j] & 0xc0) != 0x80)
                return (int64_t)i;
        i += len;
    }
    return -1;
}

unsigned char *ex_latin1_to_utf8(const unsigned char *s, size_t n, size_t *out_n)
{
    unsigned char *out = malloc(2 * n + 1), *p = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x80) {
            *p++ = s[i];
        } else {
            *p++ = (unsigned char)(0xc0 | (s[i] >> 6));
            *p++ = (unsigned char)(0x80 | (s[i] & 0x3f));
        }
    }
    *out_n = (size_t)(p - out);
    return out;
}

uint32_t ex_utf8_next(const unsigned char *s, size_t n, size_t *i)
{
    unsigned c = s[*i];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
    bool ok = len > 0 && *i + (size_t)len <= n;
    for (int j = 1; ok && j < len; j++) {
        ok = (s[*i + (size_t)j] & 0xc0) == 0x80;
        cp = (cp << 6) | (s[*i + (size_t)j] & 0x3f);
    }
    *i += ok ? (size_t)len : 1;
    return ok ? cp : 0xfffd;
}

int ex_utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

int ex_runtime(const char *prog, int64_t threads)
{
    if (threads > 0)
        tn_set_num_threads((int)threads);
    if (tn_runtime_init() != TN_OK) {
        fprintf(stderr, "%s: %s\n", prog, tn_last_error());
        return -1;
    }
    return 0;
}

tn_cell ex_cell(const char *name)
{
    tn_cell c = TN_CELL_LSTM;
    tn_cell_from_name(name, &c);
    return c;
}

double ex_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void ex_progress(bool tty, int64_t step, int64_t steps, int64_t start, double t0, double loss,
                 double per_step, const char *unit)
{
    double el = ex_seconds() - t0, done = (double)(step - start);
    double rate = done * per_step / el, eta = (double)(steps - step) * el / done;
    if (tty) {
        int w = 30, fill = (int)(w * step / (steps ? steps : 1));
        fprintf(stderr, "\r[%.*s%*s] step %" PRId64 "/%" PRId64 " loss %.4f  %.0f %s/s  ETA %.0fs ",
                fill, "##############################", w - fill, "", step, steps, loss, rate, unit,
                eta);
    } else if (step % 50 == 0 || step == steps) {
        fprintf(stderr, "step %" PRId64 "/%" PRId64 " loss %.4f %.0f %s/s ETA %.0fs\n", step, steps,
                loss, rate, unit, eta);
    }
}

int ex_read_text(const char *prog, const char *opt, const char *path, const char *encoding,
                 char **text, size_t *n)
{
    unsigned char *buf;
    size_t len;
    *text = NULL;
    if (ex_read_file(prog, opt, path, &buf, &len))
        return -1;
    if (encoding && strcmp(encoding, "latin-1") == 0) {
        unsigned char *u = ex_latin1_to_utf8(buf, len, &len);
        free(buf);
        if (!(buf = u)) {
            fprintf(stderr, "%s: %s %s: out of memory\n", prog, opt, path);
            return -1;
        }
    } else {
        int64_t bad = ex_utf8_invalid_at(buf, len);
        if (bad >= 0) {
            fprintf(stderr,
                    "%s: %s %s: not valid UTF-8 at byte offset %" PRId64
                    " (byte 0x%02x); for Latin-1 text use --encoding latin-1\n",
                    prog, opt, path, bad, buf[bad]);
            free(buf);
            return -1;
        }
    }
    char *t = realloc(buf, len + 1);
    if (!t) {
        free(buf);
        fprintf(stderr, "%s: %s %s: out of memory\n", prog, opt, path);
        return -1;
    }
    t[len] = '\0';
    *text = t;
    *n = len;
    return 0;
}

/* ---- checkpoints, input ---- */

int ex_load_params(const char *prog, const char *path, tn_params *ps)
{
    tn_params *sets[1] = {ps};
    if (tn_load(path, sets, 1, NULL) == TN_OK)
        return 0;
    fprintf(stderr, "%s: --checkpoint %s: %s\n", prog, path, tn_last_error());
    return -1;
}

int ex_checkpoint_ints(const char *prog, const char *path, tn_meta *meta, const char *const *keys,
                       int64_t *const *vals, int n)
{
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "%s: --checkpoint %s: %s\n", prog, path, strerror(errno));
        return -1;
    }
    tn_status s = tn_load_meta(path, meta);
    for (int i = 0; i < n && s == TN_OK; i++)
        s = tn_meta_get_int(meta, keys[i], vals[i]);
    if (s == TN_OK)
        return 0;
    fprintf(stderr, "%s: --checkpoint %s: %s\n", prog, path, tn_last_error());
    return -1;
}

int ex_read_line(const char *prog, FILE *f, char **line, size_t *cap, size_t *n, int64_t *lineno)
{
    ssize_t got = getline(line, cap, f);
    if (got < 0)
        return 0;
    ++*lineno;
    *n = (size_t)got;
    if (ex_utf8_invalid_at((const unsigned char *)*line, *n) < 0 && strlen(*line) == *n)
        return 1;
    fprintf(stderr, "%s: standard input line %" PRId64 ": not valid UTF-8 text\n", prog, *lineno);
    return -1;
}
