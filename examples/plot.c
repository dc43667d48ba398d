/* plot.c - gnuplot as a subprocess for the example programs (see plot.h). */
#include "plot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool plot_available(void)
{
    return system("gnuplot -e 'set terminal pngcairo' >/dev/null 2>&1") == 0;
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
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "gnuplot '%s' 2>/dev/null", script);
    if (plot_available() && system(cmd) == 0) {
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

int plot_heatmap(const char *prog, const char *png, const double *m, int rows, int cols,
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
    fprintf(f, "set terminal pngcairo size %d,%d\nset output '%s'\nset datafile separator ','\n"
               "set palette grey negative\nunset key\nset xtics rotate by 45 right\n"
               "set yrange [%d.5:-0.5]\nset xrange [-0.5:%d.5]\n",
            width, height, png, rows - 1, cols - 1);
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
    fprintf(f, "plot '%s' matrix with image\n", csv);
    if (fclose(f) != 0)
        return PLOT_ERROR;
    return run_script(png, gp, csv);
}

int plot_lines(const char *prog, const char *png, const char *csv, int ncols, const char *title,
               const char *xlabel, const char *ylabel, bool logy, int width, int height)
{
    char gp[4096];
    FILE *f = open_side(prog, png, ".gp", gp, sizeof gp);
    if (!f)
        return PLOT_ERROR;
    fprintf(f, "set terminal pngcairo size %d,%d\nset output '%s'\nset datafile separator ','\n"
               "set key outside right\nset key autotitle columnhead\nset grid\n",
            width, height, png);
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
    fprintf(f, "plot for [i=2:%d] '%s' using 1:i with lines lw 2 dt 1+(i-2)/8\n",
            ncols + 1, csv);
    if (fclose(f) != 0)
        return PLOT_ERROR;
    return run_script(png, gp, csv);
}
