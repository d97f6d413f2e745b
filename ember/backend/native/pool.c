/* ember's thread pool for native work: the caller runs part 0 of a split job, workers run the
 * others, and a worker that has not started its part when the caller is done loses it to the
 * caller.
 *
 * Why not OpenBLAS's threads or Python threads: NumPy's OpenBLAS gains only 1.1-1.4x from a
 * second core on the workloads' products (its worker busy-waits ~0.1 s after every call, and
 * that core is then lost to everything else), while the same products split in two halves,
 * each one single-threaded sgemm, gain 1.6-2.2x; a Python thread starts 60-120 us after it is
 * queued on this project's VM. A worker here polls for its next part for a short while
 * (ember_pool_spin, default 500 us: back-to-back products of a training step find it awake),
 * then sleeps on a condition variable, so an idle process uses no CPU.
 *
 * Each worker owns one slot, a word holding the call number and the state of the part that
 * worker may run: PUBLISHED by the caller, then RUNNING (the worker won it) or STOLEN (the
 * caller won it) by compare-and-swap, then DONE. The caller waits only for RUNNING parts, and
 * the call's fields (task, ctx) are read by a worker only after it won its part, so a worker
 * that wakes late never touches a finished call.
 */

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "native.h"

#define MAX_WORKERS 63
enum { PUBLISHED = 0, RUNNING = 1, DONE = 2, STOLEN = 3 };

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

struct slot {
    _Atomic uint64_t state;   /* call number << 2 | PUBLISHED/RUNNING/DONE/STOLEN */
    _Atomic int sleeping;
    char pad[64 - sizeof(uint64_t) - sizeof(int)];
};

static struct {
    pthread_mutex_t call;     /* one call at a time; others run inline */
    pthread_mutex_t sleep;
    pthread_cond_t wake;
    int workers;              /* started; changed under `call` only */
    uint64_t seq;             /* last call number; under `call` */
    ember_task task;
    void *ctx;
    _Atomic int64_t spin_ns;
    struct slot slots[MAX_WORKERS] __attribute__((aligned(64)));
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
          0, 0, 0, 0, 500000, {{DONE, 0, {0}}}};

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* The slot's word once its call number differs from `seen`: polled for spin_ns, then slept. */
static uint64_t next_call(struct slot *s, uint64_t seen)
{
    int64_t deadline = now_ns() + atomic_load_explicit(&pool.spin_ns, memory_order_relaxed);
    for (unsigned i = 1;; i++) {
        uint64_t w = atomic_load_explicit(&s->state, memory_order_acquire);
        if (w >> 2 != seen)
            return w;
        cpu_relax();
        if ((i & 63) == 0 && now_ns() > deadline)
            break;
    }
    pthread_mutex_lock(&pool.sleep);
    atomic_store(&s->sleeping, 1);
    uint64_t w;
    while ((w = atomic_load(&s->state)) >> 2 == seen)
        pthread_cond_wait(&pool.wake, &pool.sleep);
    atomic_store(&s->sleeping, 0);
    pthread_mutex_unlock(&pool.sleep);
    return w;
}

static void *worker(void *arg)
{
    struct slot *s = arg;
    int64_t part = s - pool.slots + 1;
    uint64_t seen = atomic_load(&s->state) >> 2;
    for (;;) {
        uint64_t w = next_call(s, seen);
        seen = w >> 2;
        if ((w & 3) == PUBLISHED &&
            atomic_compare_exchange_strong(&s->state, &w, seen << 2 | RUNNING)) {
            pool.task(pool.ctx, part);  /* stable: the caller waits for this part */
            atomic_store_explicit(&s->state, seen << 2 | DONE, memory_order_release);
        }
    }
    return 0;
}

/* Start workers up to `n` (signals blocked in them: Python handles signals on its main
 * thread); fewer if the system refuses. */
static void ensure_workers(int n)
{
    if (n <= pool.workers)
        return;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    while (pool.workers < n) {
        pthread_t t;
        struct slot *s = &pool.slots[pool.workers];
        atomic_store(&s->state, pool.seq << 2 | DONE);
        if (pthread_create(&t, &attr, worker, s) != 0)
            break;
        pool.workers++;
    }
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, 0);
}

/* fork: no call in flight across it (the handlers hold both locks); the child has none of the
 * parent's workers and starts its own at its first call. */
static void before_fork(void)
{
    pthread_mutex_lock(&pool.call);
    pthread_mutex_lock(&pool.sleep);
}

static void after_fork_parent(void)
{
    pthread_mutex_unlock(&pool.sleep);
    pthread_mutex_unlock(&pool.call);
}

static void after_fork_child(void)
{
    pthread_cond_init(&pool.wake, 0);  /* the parent's sleepers do not exist here */
    pthread_mutex_unlock(&pool.sleep);
    for (int i = 0; i < pool.workers; i++)
        atomic_store(&pool.slots[i].sleeping, 0);
    pool.workers = 0;
    pthread_mutex_unlock(&pool.call);
}

static pthread_once_t registered = PTHREAD_ONCE_INIT;

static void register_fork_handlers(void)
{
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

void ember_parallel(ember_task task, void *ctx, int64_t parts)
{
    if (parts <= 1 || pthread_mutex_trylock(&pool.call) != 0) {
        for (int64_t p = 0; p < parts; p++)
            task(ctx, p);
        return;
    }
    pthread_once(&registered, register_fork_handlers);
    ensure_workers(parts - 1 < MAX_WORKERS ? (int)(parts - 1) : MAX_WORKERS);
    int64_t helpers = parts - 1 < pool.workers ? parts - 1 : pool.workers;
    pool.task = task;
    pool.ctx = ctx;
    uint64_t seq = ++pool.seq;
    int asleep = 0;
    for (int64_t i = 0; i < helpers; i++) {
        atomic_store(&pool.slots[i].state, seq << 2 | PUBLISHED);
        asleep |= atomic_load(&pool.slots[i].sleeping);
    }
    if (asleep) {
        pthread_mutex_lock(&pool.sleep);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.sleep);
    }
    task(ctx, 0);
    for (int64_t p = helpers + 1; p < parts; p++)  /* more parts than workers */
        task(ctx, p);
    for (int64_t i = 0; i < helpers; i++) {
        struct slot *s = &pool.slots[i];
        uint64_t w = seq << 2 | PUBLISHED;
        if (atomic_compare_exchange_strong(&s->state, &w, seq << 2 | STOLEN)) {
            task(ctx, i + 1);
            continue;
        }
        while (atomic_load_explicit(&s->state, memory_order_acquire) != (seq << 2 | DONE))
            cpu_relax();
    }
    pthread_mutex_unlock(&pool.call);
}

/* How long an idle worker polls before it sleeps (0: sleep at once). */
void ember_pool_spin(int64_t ns)
{
    atomic_store(&pool.spin_ns, ns < 0 ? 0 : ns);
}

int64_t ember_pool_workers(void)
{
    return pool.workers;
}

/* Tests: split `parts` ways, each part writing its own index and the id of the thread that
 * ran it. */
struct probe_ctx {
    int64_t *out;
    int64_t spin;
};

static void probe(void *arg, int64_t part)
{
    struct probe_ctx *c = arg;
    volatile int64_t x = 0;
    for (int64_t i = 0; i < c->spin; i++)
        x += i;
    c->out[2 * part] = part + 1;
    c->out[2 * part + 1] = (int64_t)(uintptr_t)pthread_self();
}

void ember_pool_probe(int64_t parts, int64_t spin, int64_t *out)
{
    struct probe_ctx c = {out, spin};
    ember_parallel(probe, &c, parts);
}
