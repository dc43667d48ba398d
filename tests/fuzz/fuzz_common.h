/* tests/fuzz/fuzz_common.h - what the programs' fuzz targets share:
 * libFuzzer's entry points, and a scratch file (the loaders and readers
 * under test take a path, so each input is written to a file first). */
#ifndef TN_FUZZ_COMMON_H
#define TN_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

/* libFuzzer's entry points, which it calls (it has no header declaring
 * them). */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Write data[0..size) to /tmp/tn_fuzz_<name>.<pid>; its path (a static
 * buffer), or NULL when it cannot be written. Remove it with unlink. */
static inline const char *fuzz_file(const char *name, const uint8_t *data, size_t size)
{
    static char path[96];
    snprintf(path, sizeof path, "/tmp/tn_fuzz_%s.%ld", name, (long)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return NULL;
    size_t w = fwrite(data, 1, size, f);
    if (fclose(f) != 0 || w != size) {
        unlink(path);
        return NULL;
    }
    return path;
}

#endif
