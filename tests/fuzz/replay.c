/* tests/fuzz/replay.c - runs a fuzz target on its committed corpus without
 * libFuzzer, so that every build's ctest (gcc or clang, with or without
 * ASan + UBSan) passes the seeds and regression inputs through the code
 * they were found in: `replay FILE|DIR ...` calls LLVMFuzzerInitialize
 * once, then LLVMFuzzerTestOneInput on every file (a directory's entries,
 * not recursively). The target aborts on a finding and the sanitizers
 * report theirs, so the test fails by crashing; an unreadable file or an
 * empty corpus fails it too (exit 1). */
#include "fuzz_common.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0, got;
    do {
        if (n == cap) {
            cap = cap ? 2 * cap : 65536;
            uint8_t *b = realloc(buf, cap);
            if (!b)
                break;
            buf = b;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    int bad = ferror(f) || n == cap; /* n == cap: out of memory growing buf */
    fclose(f);
    if (!bad)
        LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return bad ? -1 : 0;
}

int main(int argc, char **argv)
{
    LLVMFuzzerInitialize(&argc, &argv);
    long files = 0;
    for (int i = 1; i < argc; i++) {
        DIR *d = opendir(argv[i]);
        if (!d) {
            if (replay_file(argv[i])) {
                fprintf(stderr, "replay: cannot read %s\n", argv[i]);
                return 1;
            }
            files++;
            continue;
        }
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
            if (replay_file(path)) {
                fprintf(stderr, "replay: cannot read %s\n", path);
                closedir(d);
                return 1;
            }
            files++;
        }
        closedir(d);
    }
    printf("replay: %ld inputs, no finding\n", files);
    return files > 0 ? 0 : 1;
}
