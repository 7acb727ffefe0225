/* What impasto's C kernels share (net/_winograd.c, fast/_transform.c, image/_flow.c; found through the
 * extensions' include_dirs in setup.py): include it after Python.h.
 *
 *   buffers:     the entry points take their arrays as objects with the buffer protocol (a NumPy
 *                array; a CPU tensor's .numpy()) and check each one's item type, contiguity,
 *                writability and size against the dimensions passed, O(1) per call: a wrong call
 *                raises TypeError or ValueError instead of reading or writing past a buffer;
 *   SIMD:        eight floats as one GCC/Clang vector-extension value (one AVX register where the CPU
 *                has AVX2: CLONES makes an AVX2+FMA clone of a kernel, picked at load time, beside a
 *                plain x86-64 one), loads and stores of the last partial vector;
 *   thread split: parallel() splits units of work between POSIX threads, the calling one included.
 */
#ifndef IMPASTO_KERNELS_H
#define IMPASTO_KERNELS_H

#include <Python.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------- buffers */

#define HELPER static __attribute__((unused))  /* a file may leave some of these unused */

#define DIM_MAX 0x7fffffffLL  /* each dimension: 0 ... 2^31 - 1 (sums of two stay far from overflow) */

/* The number of items of an array of n dimensions (long long varargs): -1 with a ValueError where one
 * is negative or too large, or their product overflows. */
HELPER Py_ssize_t count_of(const char *call, int n, ...) {
    va_list dims;
    va_start(dims, n);
    Py_ssize_t count = 1;
    int bad = 0;
    for (int k = 0; k < n; k++) {
        const long long d = va_arg(dims, long long);
        if (d < 0 || d > DIM_MAX || __builtin_mul_overflow(count, (Py_ssize_t)d, &count)) bad = 1;
    }
    va_end(dims);
    if (bad) {
        PyErr_Format(PyExc_ValueError, "%s: a dimension is negative or too large", call);
        return -1;
    }
    return count;
}

#define BUF_OUT 1       /* written: must be writable */
#define BUF_OPTIONAL 2  /* None allowed (then view->buf is NULL) */

/* Whether a buffer's format is the native `type` ('f': float32, 'd': float64). */
HELPER int is_type(const char *format, char type) {
    if (!format) return type == 'B';
    if (format[0] == '@' || format[0] == '=') format++;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    else if (format[0] == '<') format++;
#endif
    return format[0] == type && format[1] == '\0';
}

HELPER const char *type_name(char type) { return type == 'f' ? "float32" : type == 'd' ? "float64" : "?"; }

/* Argument `name` of `call`, `obj`, as a C-contiguous array of `count` items of `type` ('f' or 'd'), into
 * *view (PyBuffer_Release it): 0, or -1 with a TypeError (not a buffer, another item type) or a
 * ValueError (not contiguous, read-only where written, another size) and *view empty. */
HELPER int get_buffer(const char *call, const char *name, PyObject *obj, char type, Py_ssize_t count, int flags,
                      Py_buffer *view) {
    memset(view, 0, sizeof *view);
    if (obj == Py_None && (flags & BUF_OPTIONAL)) return 0;
    if (!PyObject_CheckBuffer(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: %s must be a %s array (a NumPy array, a CPU tensor's .numpy())%s, "
                     "not %.100s", call, name, type_name(type), flags & BUF_OPTIONAL ? " or None" : "",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    if (PyObject_GetBuffer(obj, view, PyBUF_RECORDS_RO) < 0) {
        memset(view, 0, sizeof *view);
        return -1;
    }
    if (view->itemsize != (type == 'f' ? 4 : 8) || !is_type(view->format, type))
        PyErr_Format(PyExc_TypeError, "%s: %s must be %s, not items of format '%s'", call, name, type_name(type),
                     view->format ? view->format : "B");
    else if (!PyBuffer_IsContiguous(view, 'C'))
        PyErr_Format(PyExc_ValueError, "%s: %s must be C-contiguous", call, name);
    else if ((flags & BUF_OUT) && view->readonly)
        PyErr_Format(PyExc_ValueError, "%s: %s is written: it must not be read-only", call, name);
    else if (view->len / view->itemsize != count)
        PyErr_Format(PyExc_ValueError, "%s: %s has %zd items where the dimensions given want %zd", call, name,
                     view->len / view->itemsize, count);
    else
        return 0;
    PyBuffer_Release(view);
    return -1;
}

/* Release n views (empty ones too). */
HELPER void release_buffers(Py_buffer *views, int n) {
    for (int k = 0; k < n; k++) PyBuffer_Release(&views[k]);
}

/* ------------------------------------------------------------------------------------------- SIMD */

/* Vectors pass by value only between static functions of one file (inlined): GCC's note that this
 * ABI depends on whether AVX is enabled concerns calls between objects, none here. */
#pragma GCC diagnostic ignored "-Wpsabi"

#define VEC 8
typedef float vf __attribute__((vector_size(VEC * sizeof(float))));
typedef int vi __attribute__((vector_size(VEC * sizeof(int))));

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define CLONES
#endif
#define INLINE static inline __attribute__((always_inline))

/* Load/store n <= VEC floats; the missing lanes read as zero. */
INLINE vf load_n(const float *p, long n) {
    vf v = {0};
    if (n == VEC) memcpy(&v, p, sizeof v);
    else memcpy(&v, p, (size_t)n * sizeof(float));
    return v;
}

INLINE void store_n(float *p, vf v, long n) {
    if (n == VEC) memcpy(p, &v, sizeof v);
    else memcpy(p, &v, (size_t)n * sizeof(float));
}

/* ----------------------------------------------------------------------------------- thread split */

#define MAX_THREADS 64

/* A thread's share of a call: units first ... last - 1 of the work, and its own stretch of the scratch
 * buffer (or NULL). */
typedef struct {
    long first, last;
    float *scratch;
} Share;

/* A kernel: its share of the work described by `job` (the file's own Job, read only). */
typedef void Work(const void *job, const Share *share);

typedef struct {
    Work *fn;
    const void *job;
    Share share;
} Task;

HELPER void *run_task(void *task) {
    const Task *t = task;
    t->fn(t->job, &t->share);
    return NULL;
}

HELPER long clamp_threads(long threads) { return threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : threads; }

/* Split `units` units of work between `threads` POSIX threads, the calling one included: fn(job, share)
 * per thread with its range, and its stretch of `scratch_len` floats of `scratch` where given. */
HELPER void parallel(Work *fn, const void *job, long units, long threads, float *scratch, long scratch_len) {
    threads = clamp_threads(threads);
    if (threads > units) threads = units > 0 ? units : 1;
    Task tasks[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (long k = 0; k < threads; k++) {
        tasks[k].fn = fn, tasks[k].job = job;
        tasks[k].share.first = units * k / threads;
        tasks[k].share.last = units * (k + 1) / threads;
        tasks[k].share.scratch = scratch ? scratch + k * scratch_len : NULL;
    }
    for (long k = 1; k < threads; k++) started[k] = pthread_create(&ids[k], NULL, run_task, &tasks[k]) == 0;
    run_task(&tasks[0]);
    for (long k = 1; k < threads; k++) {
        if (started[k]) pthread_join(ids[k], NULL);
        else run_task(&tasks[k]);  /* no thread to be had: do its share here */
    }
}

/* parallel() with `scratch_len` floats of scratch per thread: 0, or -1 with a MemoryError. Call it with
 * Python's lock held; it lets go of it meanwhile. */
HELPER int parallel_scratch(Work *fn, const void *job, long units, long threads, long scratch_len) {
    float *scratch = malloc(sizeof(float) * ((size_t)scratch_len * (size_t)clamp_threads(threads) + 1));
    if (!scratch) {
        PyErr_NoMemory();
        return -1;
    }
    Py_BEGIN_ALLOW_THREADS
    parallel(fn, job, units, threads, scratch, scratch_len);
    Py_END_ALLOW_THREADS
    free(scratch);
    return 0;
}

#endif
