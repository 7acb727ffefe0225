/* The thread split shared by impasto's C kernels (_winograd.c, _transform.c): include it after the
 * file's `Job` type, which has the fields `first`, `last` (a thread's share of the units of work),
 * `scratch` and `scratch_len` (each thread's own stretch of a scratch buffer, or NULL), after Python.h
 * and stdlib.h. */
#ifndef IMPASTO_PARALLEL_H
#define IMPASTO_PARALLEL_H

#include <pthread.h>

#define MAX_THREADS 64

static long clamp_threads(long threads) { return threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : threads; }

/* Split `units` units of work between `threads` POSIX threads, the calling one included: fn(job)
 * on a copy of `base` per thread with its range (and its stretch of `scratch`). */
static void parallel(void *(*fn)(void *), Job base, long units, long threads) {
    threads = clamp_threads(threads);
    if (threads > units) threads = units > 0 ? units : 1;
    Job jobs[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (long k = 0; k < threads; k++) {
        jobs[k] = base;
        jobs[k].first = units * k / threads;
        jobs[k].last = units * (k + 1) / threads;
        jobs[k].scratch = base.scratch ? base.scratch + k * base.scratch_len : NULL;
    }
    for (long k = 1; k < threads; k++) started[k] = pthread_create(&ids[k], NULL, fn, &jobs[k]) == 0;
    fn(&jobs[0]);
    for (long k = 1; k < threads; k++) {
        if (started[k]) pthread_join(ids[k], NULL);
        else fn(&jobs[k]);  /* no thread to be had: do its share here */
    }
}

/* parallel() with `base.scratch_len` floats of scratch per thread, Python's lock let go meanwhile:
 * None, or NULL with a MemoryError. */
static PyObject *parallel_scratch(void *(*fn)(void *), Job base, long units, long threads) {
    base.scratch = malloc(sizeof(float) * (size_t)base.scratch_len * (size_t)clamp_threads(threads));
    if (!base.scratch) return PyErr_NoMemory();
    Py_BEGIN_ALLOW_THREADS
    parallel(fn, base, units, threads);
    Py_END_ALLOW_THREADS
    free(base.scratch);
    Py_RETURN_NONE;
}

#endif
