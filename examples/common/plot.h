/* plot.h - the example programs' plots: gnuplot (Debian's gnuplot-nox) run
 * as a subprocess on a CSV file the program writes anyway. Without gnuplot
 * (or when it fails) the CSV and the gnuplot script stay next to the
 * requested PNG and the message says how to plot them. Nothing here is
 * part of libtensor. */
#ifndef TN_EXAMPLES_PLOT_H
#define TN_EXAMPLES_PLOT_H

#include <stdbool.h>

/* Results of the plot functions. */
enum { PLOT_PNG = 0, PLOT_CSV_ONLY = 1, PLOT_ERROR = -1 };

/* A heat map of m (rows x cols, row-major) into png, width x height pixels.
 * Row r is labelled row_labels[r] on the y axis (top to bottom), column c
 * col_labels[c] on the x axis; either may be NULL (indices). The matrix is
 * written to png + ".csv" and the script to png + ".gp". The palette is
 * white (low) to black (high), from lo to hi (lo == hi: the data's range).
 * Labels may hold any bytes but '"' and '\\', which are replaced.
 * Returns PLOT_PNG, PLOT_CSV_ONLY (message printed on stdout), or
 * PLOT_ERROR (a file could not be written; message on stderr). */
int ex_plot_heatmap(const char *prog, const char *png, const double *m, int rows, int cols,
                    const char *const *row_labels, const char *const *col_labels, const char *title,
                    double lo, double hi, int width, int height);

/* Lines from an existing CSV file with a header row: column 1 is x, columns
 * 2..ncols+1 are the series, named by the header. logy: logarithmic y axis.
 * The script goes to png + ".gp". Returns as ex_plot_heatmap. */
int ex_plot_lines(const char *prog, const char *png, const char *csv, int ncols, const char *title,
                  const char *xlabel, const char *ylabel, bool logy, int width, int height);

/* Whether a gnuplot that can write PNG (pngcairo) is on PATH. */
bool ex_plot_available(void);

#endif
