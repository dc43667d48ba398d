/* plot.c - gnuplot as a subprocess for the example programs (see plot.h). */
#define _POSIX_C_SOURCE 200809L
#include "plot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Run gnuplot with the arguments args (NULL-terminated, without argv[0]),
 * no shell in between (any file name is passed as it is), its output
 * and errors discarded. True when it ran and exited 0. */
static bool run_gnuplot(char *const *args)
{
    char *argv[8] = {"gnuplot"};
    for (int i = 0; args[i] && i < 6; i++)
        argv[i + 1] = args[i];
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        int dn = open("/dev/null", O_WRONLY);
        if (dn >= 0) {
            dup2(dn, 1);
            dup2(dn, 2);
        }
        execvp("gnuplot", argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return false;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

bool ex_plot_available(void)
{
    return run_gnuplot((char *[]){"-e", "set terminal pngcairo", NULL});
}

/* A file name as a gnuplot single-quoted string (a quote is doubled). */
static void put_path(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

/* A label inside a gnuplot double-quoted string: '"' and '\' become '\''. */
static void put_label(FILE *f, const char *s)
{
    for (; *s; s++)
        fputc(*s == '"' || *s == '\\' ? '\'' : *s, f);
}

/* set <axis> ("label" 0, "label" 1, ...) */
static void put_tics(FILE *f, const char *axis, const char *const *labels, int n)
{
    fprintf(f, "set %s (", axis);
    for (int i = 0; i < n; i++) {
        fputs(i ? ", \"" : "\"", f);
        put_label(f, labels[i]);
        fprintf(f, "\" %d", i);
    }
    fputs(")\n", f);
}

/* Run the script; say what happened. */
static int run_script(const char *png, const char *script, const char *data)
{
    if (ex_plot_available() && run_gnuplot((char *[]){(char *)script, NULL})) {
        printf("plot: %s (data: %s)\n", png, data);
        return PLOT_PNG;
    }
    printf("plot: gnuplot with pngcairo not found or failed; the data is in %s: "
           "plot it with `gnuplot %s` (Debian: apt-get install gnuplot-nox)\n",
           data, script);
    return PLOT_CSV_ONLY;
}

static FILE *open_side(const char *prog, const char *png, const char *ext, char *path, size_t cap)
{
    snprintf(path, cap, "%s%s", png, ext);
    FILE *f = fopen(path, "w");
    if (!f)
        fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
    return f;
}

int ex_plot_heatmap(const char *prog, const char *png, const double *m, int rows, int cols,
                    const char *const *row_labels, const char *const *col_labels, const char *title,
                    double lo, double hi, int width, int height)
{
    char csv[4096], gp[4096];
    FILE *f = open_side(prog, png, ".csv", csv, sizeof csv);
    if (!f)
        return PLOT_ERROR;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            fprintf(f, "%.6g%c", m[(size_t)r * cols + c], c + 1 < cols ? ',' : '\n');
    if (fclose(f) != 0)
        return PLOT_ERROR;
    if (!(f = open_side(prog, png, ".gp", gp, sizeof gp)))
        return PLOT_ERROR;
    fprintf(f, "set terminal pngcairo size %d,%d\nset output ", width, height);
    put_path(f, png);
    fprintf(f,
            "\nset datafile separator ','\n"
            "set palette grey negative\nunset key\nset xtics rotate by 45 right\n"
            "set yrange [%d.5:-0.5]\nset xrange [-0.5:%d.5]\n",
            rows - 1, cols - 1);
    if (lo != hi)
        fprintf(f, "set cbrange [%g:%g]\n", lo, hi);
    if (title) {
        fputs("set title \"", f);
        put_label(f, title);
        fputs("\"\n", f);
    }
    if (col_labels)
        put_tics(f, "xtics", col_labels, cols);
    if (row_labels)
        put_tics(f, "ytics", row_labels, rows);
    fputs("plot ", f);
    put_path(f, csv);
    fputs(" matrix with image\n", f);
    if (fclose(f) != 0)
        return PLOT_ERROR;
    return run_script(png, gp, csv);
}

int ex_plot_lines(const char *prog, const char *png, const char *csv, int ncols, const char *title,
                  const char *xlabel, const char *ylabel, bool logy, int width, int height)
{
    char gp[4096];
    FILE *f = open_side(prog, png, ".gp", gp, sizeof gp);
    if (!f)
        return PLOT_ERROR;
    fprintf(f, "set terminal pngcairo size %d,%d\nset output ", width, height);
    put_path(f, png);
    fputs("\nset datafile separator ','\nset key outside right\nset key autotitle columnhead\n"
          "set grid\n",
          f);
    if (logy)
        fputs("set logscale y\nset format y '10^{%L}'\n", f);
    const char *what[3] = {"title", "xlabel", "ylabel"};
    const char *text[3] = {title, xlabel, ylabel};
    for (int i = 0; i < 3; i++) {
        if (!text[i])
            continue;
        fprintf(f, "set %s \"", what[i]);
        put_label(f, text[i]);
        fputs("\"\n", f);
    }
    /* gnuplot has 8 line colours: series 9 to 16 are dashed, and so on (not
     * "dt (...)": a parenthesis there starts a dash pattern) */
    fprintf(f, "plot for [i=2:%d] ", ncols + 1);
    put_path(f, csv);
    fputs(" using 1:i with lines lw 2 dt 1+(i-2)/8\n", f);
    if (fclose(f) != 0)
        return PLOT_ERROR;
    return run_script(png, gp, csv);
}
