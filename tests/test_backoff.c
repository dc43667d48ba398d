/* tests/test_backoff.c - the thread back-off (tn_num_threads_active,
 * src/core/runtime.c): with a probe the test controls, the active count
 * follows min(N, cores - others) once two probes 0.1 s apart agree, stays
 * put while the probes disagree, and stays N with the back-off off; with
 * the real /proc probe (Linux), as many busy child processes as cores make
 * it drop to 1 within a few seconds. The ctest environment turns the
 * back-off off for the other tests (TN_THREAD_BACKOFF=0), so this test turns
 * it on itself. Skipped (77) with fewer than 2 CPUs. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "tensor/ops.h"

#include "../src/core/loops.h"

#include <omp.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int others; /* what the test probe reports */
static int probe_calls;
static int test_probe(void)
{
    probe_calls++;
    return others;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Run small ops (each enters a kernel, where the runtime probes when due)
 * for up to secs seconds or until the active count is want; the count. */
static int run_until(tn_tape *tp, tn_tensor *a, double secs, int want)
{
    double end = now_s() + secs;
    int active = tn_num_threads_active();
    while (active != want && now_s() < end) {
        tn_tape_reset(tp);
        tn_tensor *y = tn_sigmoid(tp, a);
        CHECK(y != NULL);
        struct timespec pause = {0, 5000000}; /* 5 ms */
        nanosleep(&pause, NULL);
        active = tn_num_threads_active();
    }
    return active;
}

int main(void)
{
    if (omp_get_num_procs() < 2) {
        printf("test_backoff: fewer than 2 CPUs, skipped\n");
        return 77;
    }
    CHECK(tn_set_num_threads(2) == TN_OK);
    CHECK(tn_set_thread_backoff(true) == TN_OK);
    tn_tape *tp = tn_tape_new();
    tn_tensor *a = tn_tensor_new(TN_F32, 2, (int64_t[]){4, 8});
    CHECK(tp && a);
    tn__backoff_test_probe(test_probe);

    others = 0;
    CHECK(run_until(tp, a, 0.5, 2) == 2);
    others = omp_get_num_procs() - 1; /* one core left: one thread */
    double t0 = now_s();
    CHECK(run_until(tp, a, 2.0, 1) == 1);
    double took = now_s() - t0;
    CHECK(took >= 0.09); /* two probes at least 0.1 s apart, not the first one */
    /* the OpenMP default of this thread follows at its next kernel entry */
    tn_tape_reset(tp);
    CHECK(tn_sigmoid(tp, a) != NULL);
    CHECK(omp_get_max_threads() == 1);
    others = 0;
    CHECK(run_until(tp, a, 2.0, 2) == 2);
    tn_tape_reset(tp);
    CHECK(tn_sigmoid(tp, a) != NULL);
    CHECK(omp_get_max_threads() == 2);
    printf("back-off: dropped to 1 thread after %.2f s, back to 2\n", took);

    /* disagreeing probes (0, busy, 0, busy ...) change nothing */
    int calls0 = probe_calls, dropped = 0;
    double end = now_s() + 1.0;
    while (now_s() < end) {
        others = probe_calls % 2 ? omp_get_num_procs() : 0;
        dropped |= run_until(tp, a, 0.02, 0) != 2;
    }
    CHECK(probe_calls - calls0 >= 4 && !dropped);

    /* off: always N */
    CHECK(tn_set_thread_backoff(false) == TN_OK);
    others = omp_get_num_procs();
    CHECK(run_until(tp, a, 0.5, 1) == 2);
    CHECK(tn_set_thread_backoff(true) == TN_OK);

#ifdef __linux__
    /* the real probe against as many spinning processes as CPUs */
    tn__backoff_test_probe(NULL);
    int n = omp_get_num_procs();
    pid_t kids[64];
    int nk = n < 64 ? n : 64;
    for (int k = 0; k < nk; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            volatile unsigned long x = 0;
            for (;;)
                x++;
        }
        CHECK(kids[k] > 0);
    }
    t0 = now_s();
    int active = run_until(tp, a, 5.0, 1);
    double t_drop = now_s() - t0;
    for (int k = 0; k < nk; k++)
        if (kids[k] > 0) {
            kill(kids[k], SIGKILL);
            waitpid(kids[k], NULL, 0);
        }
    CHECK(active == 1);
    /* back up once the machine is idle again; another load on the test
     * machine may keep it down, so this is reported, not checked */
    t0 = now_s();
    int back = run_until(tp, a, 3.0, 2);
    printf("/proc probe: %d busy processes: 1 thread after %.2f s; after they stopped: %d "
           "thread(s) after %.2f s\n",
           nk, t_drop, back, now_s() - t0);
#endif
    tn_tensor_free(a);
    tn_tape_free(tp);
    return check_report("test_backoff");
}
