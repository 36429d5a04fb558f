/* The threads a compiled plan (_infer.pyx, Plan) runs on: the calling thread and up to
 * SQNXT_POOL_MAX - 1 workers started on first use, for running one job (a function of the thread's
 * index) on every thread at once, and a barrier between the job's threads.
 *
 * Why not OpenMP: its default build is off (setup.py: its spinning workers beside OpenBLAS's made a
 * loaded 2-core machine 10-300x slower), and a plan's job needs a barrier after most of its steps
 * (about 130 for the Fashion-MNIST model), which the threads here take by spinning a bounded time
 * and then sleeping on a condition variable, and between jobs the same way (so that passes run
 * back to back find the workers awake, and an idle process costs nothing).
 *
 * One job at a time: a second caller (another Python thread running a plan, e.g. the Runner's
 * batch split) gets -1 from sqnxt_pool_try_run and runs its job on its own thread instead.
 */
#ifndef SQNXT_INFER_POOL_H
#define SQNXT_INFER_POOL_H

#include <pthread.h>
#include <sched.h>

#define SQNXT_POOL_MAX 8
/* busy polls before a thread waiting at a barrier sleeps: long enough to cover a run of steps
 * thread 0 takes whole between two split ones (tens of us), so that the other thread is awake at
 * the next split, short enough that beside other processes it sleeps and leaves its core to them
 * rather than have them preempt the thread it waits for. sqnxt23v5_w1, batch 1, two threads, 2-core
 * machine (docs/inference-speed.md): 2000 polls, 11.5 ms a pass in the interleaved benchmark (one
 * thread: about 7); 20000, 7.1 ms there but 10 ms beside two niced processes (one thread 7.8);
 * 6000, 7.2 ms there and 7.2-7.3 beside them. */
#define SQNXT_SPINS 6000
#define SQNXT_IDLE_SPINS 5000   /* polls an idle worker makes for the next job before it sleeps */

typedef void (*sqnxt_job_fn)(void *ctx, int tid, int nthreads);

static struct {
    pthread_mutex_t lock;   /* held by the caller for a whole job: one job at a time */
    pthread_mutex_t mu;     /* guards the condition variables' wake-ups */
    pthread_cond_t cv;      /* a job was posted */
    pthread_cond_t barrier_cv;  /* a barrier's last thread arrived */
    int sleepers;           /* threads asleep on barrier_cv */
    int started;            /* workers running */
    sqnxt_job_fn fn;
    void *ctx;
    int nthreads;
    long gen;               /* job number posted */
    long done;              /* threads (workers) finished with the current job */
    int arrived;            /* the barrier: threads arrived, and its phase */
    int phase;
} sqnxt_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
                PTHREAD_COND_INITIALIZER};

static inline void sqnxt_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Wait until every thread of the current job has arrived: spin a bounded time, then sleep on a
 * condition variable (a thread that spins or yields for long, beside a busy machine's other
 * processes, takes the core from the thread it waits for). */
static void sqnxt_barrier(int nthreads)
{
    int phase, spins = 0;
    if (nthreads <= 1) return;
    phase = __atomic_load_n(&sqnxt_pool.phase, __ATOMIC_ACQUIRE);
    if (__atomic_add_fetch(&sqnxt_pool.arrived, 1, __ATOMIC_ACQ_REL) == nthreads) {
        __atomic_store_n(&sqnxt_pool.arrived, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&sqnxt_pool.phase, phase + 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&sqnxt_pool.sleepers, __ATOMIC_SEQ_CST) > 0) {
            pthread_mutex_lock(&sqnxt_pool.mu);
            pthread_cond_broadcast(&sqnxt_pool.barrier_cv);
            pthread_mutex_unlock(&sqnxt_pool.mu);
        }
        return;
    }
    while (__atomic_load_n(&sqnxt_pool.phase, __ATOMIC_ACQUIRE) == phase && spins++ < SQNXT_SPINS) sqnxt_pause();
    if (__atomic_load_n(&sqnxt_pool.phase, __ATOMIC_ACQUIRE) == phase) {
        pthread_mutex_lock(&sqnxt_pool.mu);
        __atomic_add_fetch(&sqnxt_pool.sleepers, 1, __ATOMIC_SEQ_CST);
        while (__atomic_load_n(&sqnxt_pool.phase, __ATOMIC_SEQ_CST) == phase)
            pthread_cond_wait(&sqnxt_pool.barrier_cv, &sqnxt_pool.mu);
        __atomic_sub_fetch(&sqnxt_pool.sleepers, 1, __ATOMIC_SEQ_CST);
        pthread_mutex_unlock(&sqnxt_pool.mu);
    }
}

static void *sqnxt_worker(void *arg)
{
    int tid = (int)(long)arg;
    long seen = 0;
    for (;;) {
        long gen;
        int spins = 0;
        while ((gen = __atomic_load_n(&sqnxt_pool.gen, __ATOMIC_ACQUIRE)) == seen && spins++ < SQNXT_IDLE_SPINS)
            sqnxt_pause();
        if (gen == seen) {
            pthread_mutex_lock(&sqnxt_pool.mu);
            while ((gen = __atomic_load_n(&sqnxt_pool.gen, __ATOMIC_ACQUIRE)) == seen)
                pthread_cond_wait(&sqnxt_pool.cv, &sqnxt_pool.mu);
            pthread_mutex_unlock(&sqnxt_pool.mu);
        }
        seen = gen;
        if (tid < sqnxt_pool.nthreads) sqnxt_pool.fn(sqnxt_pool.ctx, tid, sqnxt_pool.nthreads);
        __atomic_add_fetch(&sqnxt_pool.done, 1, __ATOMIC_ACQ_REL);
    }
    return NULL;
}

/* Run fn(ctx, tid, nthreads) on nthreads threads, the caller being thread 0; return once every
 * thread has finished. -1 (nothing run) if another job is running or the workers cannot start. */
static int sqnxt_pool_try_run(sqnxt_job_fn fn, void *ctx, int nthreads)
{
    int i, workers;
    if (nthreads > SQNXT_POOL_MAX) nthreads = SQNXT_POOL_MAX;
    if (pthread_mutex_trylock(&sqnxt_pool.lock) != 0) return -1;
    while (sqnxt_pool.started < nthreads - 1) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        i = pthread_create(&t, &attr, sqnxt_worker, (void *)(long)(sqnxt_pool.started + 1));
        pthread_attr_destroy(&attr);
        if (i != 0) {
            pthread_mutex_unlock(&sqnxt_pool.lock);
            return -1;
        }
        sqnxt_pool.started++;
    }
    workers = sqnxt_pool.started;  /* every started worker takes each job (idle ones return at once) */
    sqnxt_pool.fn = fn;
    sqnxt_pool.ctx = ctx;
    sqnxt_pool.nthreads = nthreads;
    __atomic_store_n(&sqnxt_pool.done, 0, __ATOMIC_RELAXED);
    pthread_mutex_lock(&sqnxt_pool.mu);
    __atomic_add_fetch(&sqnxt_pool.gen, 1, __ATOMIC_ACQ_REL);
    pthread_cond_broadcast(&sqnxt_pool.cv);
    pthread_mutex_unlock(&sqnxt_pool.mu);
    fn(ctx, 0, nthreads);
    while (__atomic_load_n(&sqnxt_pool.done, __ATOMIC_ACQUIRE) < workers) sched_yield();
    pthread_mutex_unlock(&sqnxt_pool.lock);
    return 0;
}

#endif
