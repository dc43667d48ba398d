/* examples/common/cli.h - the command-line helper shared by the example programs
 * (and the benchmark). Not part of libtensor's API: it is built as the small
 * helper library tn_examples and never installed.
 *
 * A program describes its options in a table of ex_opt; ex_parse fills the
 * values, refusing (exit status 2) anything it cannot take whole: a number
 * with trailing characters, a value outside the allowed range, a name that
 * is not an option of the command. Every refusal names the option and what
 * is allowed. -h/--help prints every option with its meaning and default to
 * stdout; --version prints the program's and the library's version.
 *
 * The rest checks files before a program starts work: an input file that
 * is a directory or unreadable, an output whose directory is not writable,
 * text that is not valid UTF-8.
 */
#ifndef TN_EXAMPLES_CLI_H
#define TN_EXAMPLES_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <tensor/tensor.h>

typedef enum ex_type {
    EX_FLAG,   /* no argument; value: bool *, set to true */
    EX_STRING, /* any text; value: const char ** (points into argv) */
    EX_CHOICE, /* one of `choices` ("lstm|gru|rnn"); value: const char ** */
    EX_INT,    /* integer in [imin, imax]; value: int64_t * */
    EX_UINT64, /* integer in [0, 2^64 - 1] (seeds); value: uint64_t * */
    EX_REAL,   /* finite number in [dmin, dmax] (open ends with dmin_open,
                 * dmax_open); value: double * */
} ex_type;

typedef struct ex_opt {
    const char *name; /* "--hidden" */
    ex_type type;
    void *value;        /* where the value goes (see ex_type); its value
                         * before parsing is the default --help shows */
    const char *arg;    /* the argument's name in --help ("H", "FILE") */
    const char *help;   /* what it means, one line */
    int64_t imin, imax; /* EX_INT: the allowed range, inclusive */
    double dmin, dmax;  /* EX_REAL: the allowed range */
    bool dmin_open, dmax_open;
    const char *choices; /* EX_CHOICE: "a|b|c" */
    const char *def;     /* --help's default when not the value itself
                           * ("all cores"); NULL: print the value */
    unsigned commands;   /* bit i: an option of spec->commands[i]; 0: of all */
} ex_opt;

typedef struct ex_spec {
    const char *prog;                /* "char_rnn" */
    const char *summary;             /* one line: what the program does */
    const char *const *commands;     /* subcommand names, NULL-terminated; or NULL */
    const char *const *command_help; /* one line per command (same order) */
    const ex_opt *opts;
    int n_opts;
    const char *notes;       /* more --help text (may be NULL) */
    const char *exit_status; /* --help's exit status lines; NULL: the common ones (0 done,
                              * 1 failed while running, 2 bad arguments) */
} ex_spec;

enum {
    EX_OK = 0,    /* options parsed: go on */
    EX_DONE = 1,  /* --help or --version printed: exit 0 */
    EX_USAGE = 2, /* refused, the reason printed to stderr: exit 2 */
};

/* Parse argv[1..argc). With spec->commands, argv[1] must be one of them (or
 * -h/--help/--version) and *command gets its index; otherwise *command is 0
 * (command may be NULL then). Options are "--name value" or "--name=value";
 * the last of a repeated option wins. Returns EX_OK, EX_DONE or EX_USAGE
 * (the message is printed; exit with the returned number). */
int ex_parse(const ex_spec *spec, int argc, char **argv, int *command);

/* The default of every program's --threads, as the library chooses it
 * (tn_runtime_init). */
#define EX_THREADS_DEFAULT \
    "$TN_NUM_THREADS, else $OMP_NUM_THREADS, else the cores available (per MPI rank)"

/* The options of the programs that draw from a model (char_rnn, word_lm,
 * translate): --temperature, --top-k and --top-p into the tn_sample_opts
 * *so (tensor/nn.h), for the commands of the bit mask cmds. Three
 * entries of a ex_opt table. */
#define EX_SAMPLE_OPTS(so, cmds)                                                      \
    {"--temperature",                                                                 \
     EX_REAL,                                                                         \
     &(so)->temperature,                                                              \
     "X",                                                                             \
     "sampling temperature (0: greedy, always the likeliest)",                        \
     .dmin = 0,                                                                       \
     .dmax = 100,                                                                     \
     .commands = (cmds)},                                                             \
        {"--top-k",                                                                   \
         EX_INT,                                                                      \
         &(so)->top_k,                                                                \
         "K",                                                                         \
         "sample among the K likeliest (0: all)",                                     \
         .imin = 0,                                                                   \
         .imax = 1000000000,                                                          \
         .commands = (cmds)},                                                         \
    {                                                                                 \
        "--top-p", EX_REAL, &(so)->top_p, "P",                                        \
            "sample among the fewest likeliest whose probability reaches P (1: all)", \
            .dmin = 0, .dmin_open = true, .dmax = 1, .commands = (cmds)               \
    }

/* Read a whole input file (given as option `opt`, e.g. "--data") into a
 * malloc'd buffer (*buf, *n; the caller frees *buf). Refuses, naming the
 * option and the path, a path that does not exist, is a directory or
 * cannot be read. Returns 0 or -1 (message printed). */
int ex_read_file(const char *prog, const char *opt, const char *path, unsigned char **buf,
                 size_t *n);

/* Check, without creating or changing anything, that `path` (option `opt`)
 * can be written: it is not a directory, its directory exists and accepts a
 * new file (probed by creating and removing a temporary file there, as an
 * atomic write would), and an existing file at path can be opened for
 * writing. Returns 0 or -1 (message printed). */
int ex_check_output(const char *prog, const char *opt, const char *path);

/* The most training steps a program's --steps allows; a checkpoint's "step"
 * beyond it was not written by a run of the program (ex_check_range). */
#define EX_STEPS_MAX INT64_C(1000000000000)

/* Check a training-state field read from a checkpoint's metadata when
 * resuming: v (metadata `key` of the file `path`) must be in [lo, hi], the
 * values a run of the program could have saved there (`what` says why, e.g.
 * "the positions in this training split"). A value outside is refused
 * naming the file, the field, the value and the range: the programs index
 * their data and count their steps with these fields, so a crafted value
 * would read out of bounds, overflow, or end a run silently. Returns 0, or
 * -1 (message printed). */
int ex_check_range(const char *prog, const char *path, const char *key, int64_t v, int64_t lo,
                   int64_t hi, const char *what);

/* A tensor a model built from a checkpoint's metadata will have: its name
 * and 2-D shape. */
typedef struct ex_shape {
    const char *name;
    int64_t rows, cols;
} ex_shape;

/* Check the sizes a checkpoint's metadata claims (described in `sizes`,
 * e.g. "hidden 32, embed 16, layers 1") against the file's own tensors
 * before building a model from them: each of want[0..n) must be in the
 * file `path` with that shape. The programs list their largest parameters
 * (the embeddings, the first input weights, the last layer's recurrent
 * weights); once those match tensors whose data the file holds
 * (tn_load_list checks that), the model is no larger than the file, where
 * crafted sizes built gigabytes before tn_load compared any shape. Returns
 * 0, or -1 (message printed naming the file, the sizes, the tensor and its
 * shape in the file). */
int ex_check_shapes(const char *prog, const char *path, const char *sizes, const ex_shape *want,
                    int n);

/* Byte offset of the first byte that is not part of valid UTF-8 (RFC 3629:
 * no overlong forms, surrogates or code points above U+10FFFF) in s[0..n),
 * or -1 when all of it is valid. */
int64_t ex_utf8_invalid_at(const unsigned char *s, size_t n);

/* s[0..n) read as Latin-1 (ISO 8859-1), converted to UTF-8 in a new malloc'd
 * buffer of *out_n bytes (NULL when out of memory). */
unsigned char *ex_latin1_to_utf8(const unsigned char *s, size_t n, size_t *out_n);

/* Read a text file (given as option `opt`) as UTF-8: with encoding
 * "latin-1" it is converted, otherwise bytes that are not valid UTF-8 are
 * refused naming the byte offset and value. *text gets a malloc'd,
 * NUL-terminated buffer of *n bytes (the caller frees it). Returns 0 or -1
 * (message printed). */
int ex_read_text(const char *prog, const char *opt, const char *path, const char *encoding,
                 char **text, size_t *n);

/* The code point at s[*i] of s[0..n), *i advanced past it; an invalid or
 * cut sequence gives U+FFFD and advances one byte. */
uint32_t ex_utf8_next(const unsigned char *s, size_t n, size_t *i);
/* The UTF-8 bytes of code point cp into out (room for 4); their number. */
int ex_utf8_encode(uint32_t cp, char *out);

/* Start the library's runtime on `threads` threads (0: its default,
 * $TN_NUM_THREADS or all cores); a failure is printed naming prog.
 * Returns 0 or -1. */
int ex_runtime(const char *prog, int64_t threads);

/* The cell of a name the option parser accepted (EX_CHOICE "lstm|gru|rnn"
 * or a checkpoint's checked metadata): tn_cell_from_name's, LSTM for a
 * name it does not know (which the caller's checks rule out). */
tn_cell ex_cell(const char *name);

/* Seconds of a monotonic clock (for durations). */
double ex_seconds(void);

/* Training progress on stderr after `step` of `steps` (the run started at
 * step `start`, t0 seconds of ex_seconds()): the smoothed loss, the rate
 * in `unit`s per second (per_step units a step: tokens, pairs, examples)
 * and the time left. On a terminal (tty) a bar redrawn in place every
 * step (print "\n" before a line of one's own, and at the end); otherwise
 * a line every 50 steps and at the last. */
void ex_progress(bool tty, int64_t step, int64_t steps, int64_t start, double t0, double loss,
                 double per_step, const char *unit);

/* The libtensor type the helper below takes (tensor/tensor.h). */
struct tn_params;

/* tn_load of the parameters ps from the checkpoint path (given as
 * --checkpoint), after the program built them from its metadata. Returns 0,
 * or -1 (message naming the file). */
int ex_load_params(const char *prog, const char *path, struct tn_params *ps);

/* The start of a program's model_load: the checkpoint path (given as
 * --checkpoint) must be readable; its metadata is read into meta (which
 * the caller initialised and frees) and the integer entries keys[0..n)
 * into *vals[0..n). Returns 0, or -1 (message naming the file). */
int ex_checkpoint_ints(const char *prog, const char *path, tn_meta *meta, const char *const *keys,
                       int64_t *const *vals, int n);

/* The next line of f (standard input) into *line (getline's buffer, *cap),
 * *n bytes with its newline; *lineno counts the lines. Returns 1 for a
 * line, 0 at the end, -1 for a line that is not UTF-8 text or holds a NUL
 * byte (refused naming the line). */
int ex_read_line(const char *prog, FILE *f, char **line, size_t *cap, size_t *n, int64_t *lineno);

#endif
