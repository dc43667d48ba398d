/* src/core/runtime.c - BLIS sub-configuration choice, threads, denormals.
 *
 * BLIS 0.9.0 picks its kernels once, at initialisation, from cpuid; on CPUs
 * it does not know (e.g. AMD family 0x1A) it falls back to slow generic
 * kernels, and on some AVX-512 Intel parts it picks the AVX2 haswell
 * kernels. BLIS_ARCH_TYPE overrides the choice, but only as a number (the
 * arch_t enum) and only if set before BLIS initialises. So before our first
 * BLIS call we decide: a value the user set is respected; otherwise a CPU
 * with AVX-512 F/DQ/BW/VL gets skx, an AMD Zen 1-3 is left to BLIS (it knows
 * them), any other CPU with AVX2+FMA gets haswell, and the rest is left to
 * BLIS's own detection. A kernel path forced with TN_ISA (isa.c) picks the
 * matching configuration instead (skx, haswell, generic); an impossible
 * TN_ISA leaves the runtime uninitialised, and every call reports it.
 *
 * Threads (issue 10, D5): the initialisation runs once (pthread_once), so
 * any thread may be the first to call the library. The thread count is a
 * process-wide setting with a generation number: a thread that enters a
 * kernel (tn__thread_sync, from TN_FTZ_SCOPE) with an old generation sets
 * its own OpenMP default (omp_set_num_threads only reaches the calling
 * thread's teams) and turns flush-to-zero on in its team's workers. The
 * calling thread itself computes under flush-to-zero only inside the
 * library (TN_FTZ_SCOPE in src/core/loops.h) and gets its own mode back.
 *
 * Back-off (Linux): OpenMP's and BLIS's barriers spin while a partner
 * thread is descheduled, so when other processes keep the cores busy a
 * team of N threads on N cores waits a scheduler slice at every barrier:
 * measured 14.5 ms a step on one thread against 480-1110 ms on two with
 * two other busy processes on 2 cores. So at most every PROBE_NS, from a
 * thread entering a kernel outside a parallel region, the runtime counts
 * the threads running on the machine that are not this process's
 * (/proc/loadavg's running count minus this process's threads in state R),
 * and the library runs on min(N, cores - others) threads (at least 1);
 * a new count is taken once two probes in a row agree. Results do not
 * depend on it wherever they do not depend on the thread count (the
 * recurrent and element-wise kernels are bitwise equal for 1 and 2
 * threads). tn_set_thread_backoff / TN_THREAD_BACKOFF=0 turn it off.
 */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <blis.h>
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifdef __linux__
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#include <pmmintrin.h>
#define TN_X86 1
#endif

static pthread_once_t runtime_once = PTHREAD_ONCE_INIT;
static atomic_int n_threads = 1;
static atomic_int threads_gen = 1;    /* bumped by every thread-count change */
static atomic_int active_threads = 1; /* n_threads, or fewer while backing off */
static atomic_bool backoff_on = true;
static atomic_llong next_probe_ns = 0; /* when the next probe is due */
static atomic_int probe_want = 0;      /* the last probe's count, and */
static atomic_int probe_agree = 0;     /* how many probes in a row gave it */
static int (*others_probe)(void);      /* tests: replaces the /proc probe */
static int n_cpus = 1;
#define PROBE_NS 100000000LL             /* 0.1 s */
static _Thread_local int thread_gen = 0; /* generation this thread applied */
/* written once inside runtime_once, read-only afterwards */
static char config_name[32] = "uninitialised";
static char config_reason[256] = "";
static tn_status runtime_status = TN_OK;
static char runtime_msg[160] = "";

static void cpu_vendor_family(char vendor[13], unsigned *family)
{
#ifndef TN_X86
    snprintf(vendor, 13, "non-x86");
    *family = 0;
#else
    unsigned a, b, c, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0), "c"(0));
    memcpy(vendor, &b, 4);
    memcpy(vendor + 4, &d, 4);
    memcpy(vendor + 8, &c, 4);
    vendor[12] = '\0';
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
    *family = ((a >> 8) & 0xf) + (((a >> 8) & 0xf) == 0xf ? ((a >> 20) & 0xff) : 0);
#endif
}

/* Sets BLIS_ARCH_TYPE unless the user did; records why. A forced kernel
 * path (TN_ISA) picks the matching configuration; otherwise the CPU's
 * best path does: skx with AVX-512, haswell with AVX2 + FMA except on the
 * AMD Zen 1-3 that BLIS knows, the rest is left to BLIS. */
static void choose_blis_arch(void)
{
    const char *user = getenv("BLIS_ARCH_TYPE");
    if (user && *user) {
        snprintf(config_reason, sizeof config_reason, "user BLIS_ARCH_TYPE=%s", user);
        return;
    }
    char vendor[13];
    unsigned family;
    cpu_vendor_family(vendor, &family);
    tn_isa isa = tn_isa_cpu();
    bool forced = tn__isa_forced();
    if (forced)
        isa = tn__isa_value(); /* not tn_isa_active: we are inside the once routine */
    bool known_zen = strcmp(vendor, "AuthenticAMD") == 0 && (family == 0x17 || family == 0x19);
    int arch = -1;
    if (isa == TN_ISA_AVX512)
        arch = BLIS_ARCH_SKX;
    else if (isa == TN_ISA_AVX2 && (forced || !known_zen))
        arch = BLIS_ARCH_HASWELL;
    else if (isa == TN_ISA_GENERIC && forced)
        arch = BLIS_ARCH_GENERIC;
    if (arch < 0) {
        snprintf(config_reason, sizeof config_reason, "auto: BLIS's own cpuid detection");
        return;
    }
    char num[8];
    snprintf(num, sizeof num, "%d", arch);
    setenv("BLIS_ARCH_TYPE", num, 0);
    snprintf(config_reason, sizeof config_reason,
             "chosen: %s path%s (%s family 0x%x), BLIS_ARCH_TYPE=%s", tn_isa_name(isa),
             forced ? " forced by TN_ISA" : " of this cpu", vendor, family, num);
}

void tn_flush_denormals(void)
{
#ifdef TN_X86
    _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
    _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
#endif
}

/* A whole decimal integer in [1, TN_THREADS_MAX] (or, list, the first
 * entry of a comma-separated list such as OMP_NUM_THREADS's "4,2"); 0 when
 * s is anything else. */
#define TN_THREADS_MAX 1024
static int parse_threads(const char *s, bool list)
{
    char *end;
    if (!s || *s < '0' || *s > '9')
        return 0;
    long v = strtol(s, &end, 10);
    if (!(*end == '\0' || (list && *end == ',')) || v < 1 || v > TN_THREADS_MAX)
        return 0;
    return (int)v;
}

/* The default thread count: TN_NUM_THREADS, else OMP_NUM_THREADS, else the
 * CPUs this process may run on (its affinity mask, omp_get_num_procs)
 * shared among the processes a launcher started on this node (Open MPI's
 * OMPI_COMM_WORLD_LOCAL_SIZE, MPICH's MPI_LOCALNRANKS), so that ranks do
 * not each take every core. A set but invalid variable is an error (in
 * msg), not silently ignored. */
static int default_threads(char *msg, size_t cap)
{
    static const char *const vars[] = {"TN_NUM_THREADS", "OMP_NUM_THREADS"};
    for (int i = 0; i < 2; i++) {
        const char *v = getenv(vars[i]);
        if (!v || !*v)
            continue;
        int n = parse_threads(v, i == 1);
        if (!n)
            snprintf(msg, cap, "%s=%s: not a thread count (an integer from 1 to %d)", vars[i], v,
                     TN_THREADS_MAX);
        return n;
    }
    int n = omp_get_num_procs(), ranks = 0;
    const char *local[] = {getenv("OMPI_COMM_WORLD_LOCAL_SIZE"), getenv("MPI_LOCALNRANKS")};
    for (int i = 0; i < 2 && !ranks; i++)
        ranks = parse_threads(local[i], false);
    n = ranks > 1 ? n / ranks : n;
    return n > 0 ? n : 1;
}

static void runtime_init_once(void)
{
    runtime_status = tn__isa_choose(runtime_msg, sizeof runtime_msg);
    if (runtime_status != TN_OK) {
        snprintf(config_reason, sizeof config_reason, "not initialised: %s", runtime_msg);
        return;
    }
    choose_blis_arch();
    bli_init();
    snprintf(config_name, sizeof config_name, "%s", bli_arch_string(bli_arch_query_id()));
    int n = default_threads(runtime_msg, sizeof runtime_msg);
    if (!n) {
        runtime_status = TN_ERR_ARG;
        snprintf(config_reason, sizeof config_reason, "not initialised: %s", runtime_msg);
        return;
    }
    const char *bo = getenv("TN_THREAD_BACKOFF");
    if (bo && *bo && strcmp(bo, "0") != 0 && strcmp(bo, "1") != 0) {
        runtime_status = TN_ERR_ARG;
        snprintf(runtime_msg, sizeof runtime_msg, "TN_THREAD_BACKOFF=%s: not 0 or 1", bo);
        snprintf(config_reason, sizeof config_reason, "not initialised: %s", runtime_msg);
        return;
    }
    atomic_store(&backoff_on, !(bo && strcmp(bo, "0") == 0));
    n_cpus = omp_get_num_procs();
    atomic_store(&n_threads, n);
    atomic_store(&active_threads, n);
    bli_thread_set_num_threads(n);
}

#ifdef __linux__
/* The whole of a small /proc file into buf (NUL-terminated); its length,
 * or -1. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n >= 0)
        buf[n] = '\0';
    return n;
}

/* Threads running on the machine now that are not this process's, or -1
 * when /proc cannot tell: the running count of /proc/loadavg ("0.50 0.40
 * 0.30 3/120 4567") minus this process's threads in state R (the prober
 * itself is one of them). */
static int others_running_proc(void)
{
    char buf[256];
    if (read_small("/proc/loadavg", buf, sizeof buf) <= 0)
        return -1;
    int total = -1;
    if (sscanf(buf, "%*s %*s %*s %d/", &total) != 1 || total < 1)
        return -1;
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int ours = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/self/task/%.20s/stat", e->d_name);
        if (read_small(path, buf, sizeof buf) <= 0)
            continue;
        const char *rp = strrchr(buf, ')'); /* "tid (comm) S ..." */
        ours += rp && rp[1] == ' ' && rp[2] == 'R';
    }
    closedir(d);
    int others = total - ours;
    return others > 0 ? others : 0;
}
#else
static int others_running_proc(void) { return -1; }
#endif

/* Probe when due (one thread at a time, by the compare-exchange on the due
 * time) and change the active count once two probes agree. */
static void backoff_probe(void)
{
    int n = atomic_load(&n_threads);
    if (n < 2 || !atomic_load(&backoff_on))
        return;
    struct timespec ts;
#ifdef CLOCK_MONOTONIC_COARSE /* Linux: a few ns, ticks of 1-4 ms are fine here */
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
#else
    clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
    long long now = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    long long due = atomic_load(&next_probe_ns);
    if (now < due || !atomic_compare_exchange_strong(&next_probe_ns, &due, now + PROBE_NS))
        return;
    int others = others_probe ? others_probe() : others_running_proc();
    if (others < 0)
        return;
    int want = n_cpus - others < n ? n_cpus - others : n;
    want = want > 1 ? want : 1;
    if (atomic_exchange(&probe_want, want) != want) {
        atomic_store(&probe_agree, 1);
        return;
    }
    if (atomic_fetch_add(&probe_agree, 1) + 1 >= 2 && atomic_load(&active_threads) != want) {
        atomic_store(&active_threads, want);
        bli_thread_set_num_threads(want);
        atomic_fetch_add(&threads_gen, 1);
    }
}

void tn__thread_sync(void)
{
    pthread_once(&runtime_once, runtime_init_once);
    if (runtime_status != TN_OK || omp_in_parallel())
        return;
    backoff_probe();
    int gen = atomic_load(&threads_gen);
    if (thread_gen == gen)
        return;
    thread_gen = gen;
    int n = atomic_load(&active_threads);
    omp_set_num_threads(n);
    /* MXCSR is per thread: flush denormals in this thread's team workers
     * (new workers inherit it from the thread that creates them, which
     * does so inside TN_FTZ_SCOPE); the calling thread (0) keeps its own. */
#pragma omp parallel num_threads(n)
    if (omp_get_thread_num() != 0)
        tn_flush_denormals();
}

tn_status tn_runtime_init(void)
{
    tn__thread_sync();
    if (runtime_status != TN_OK)
        return tn_set_error(runtime_status, "%s", runtime_msg);
    return TN_OK;
}

const char *tn_runtime_error(void)
{
    pthread_once(&runtime_once, runtime_init_once);
    return runtime_msg;
}

tn_status tn_set_num_threads(int n)
{
    tn_status st = tn_runtime_init();
    if (st != TN_OK)
        return st;
    if (n < 1 || n > TN_THREADS_MAX)
        return tn_set_error(TN_ERR_ARG, "tn_set_num_threads: %d threads, need 1 to %d", n,
                            TN_THREADS_MAX);
    atomic_store(&n_threads, n);
    atomic_store(&active_threads, n); /* the back-off starts afresh */
    atomic_store(&probe_want, 0);
    bli_thread_set_num_threads(n);
    atomic_fetch_add(&threads_gen, 1);
    tn__thread_sync();
    return TN_OK;
}

int tn_num_threads_active(void)
{
    tn__thread_sync();
    return atomic_load(&active_threads);
}

int tn__threads_now(void) { return atomic_load(&active_threads); }

tn_status tn_set_thread_backoff(bool on)
{
    tn_status st = tn_runtime_init();
    if (st != TN_OK)
        return st;
    atomic_store(&backoff_on, on);
    if (!on &&
        atomic_exchange(&active_threads, atomic_load(&n_threads)) != atomic_load(&n_threads)) {
        bli_thread_set_num_threads(atomic_load(&n_threads));
        atomic_fetch_add(&threads_gen, 1);
    }
    atomic_store(&probe_want, 0);
    return TN_OK;
}

void tn__backoff_test_probe(int (*probe)(void))
{
    others_probe = probe;
    atomic_store(&next_probe_ns, 0);
}

int tn_num_threads(void)
{
    tn__thread_sync();
    return atomic_load(&n_threads);
}

const char *tn_blis_config(void)
{
    tn_runtime_init();
    return config_name;
}

const char *tn_blis_config_reason(void)
{
    tn_runtime_init();
    return config_reason;
}
