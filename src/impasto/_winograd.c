/* Winograd F(6x6, 3x3) tile transforms for impasto.winograd, in C (Lavin & Gray 2015, arXiv 1509.09308).
 *
 * impasto.winograd computes a 3x3 convolution as  Y = A^T [ (G g G^T) (.) (B^T d B) ] A  per 6x6 output
 * tile from an 8x8 input tile. Its PyTorch form gathers every input tile into memory and applies
 * B^T d B as one dense Kronecker product (64x64 multiply-adds per tile and channel), and A^T m A as a
 * dense 36x64 one; the 64 channel-summing products in between are a batched matrix multiply. These
 * two functions do the transforms instead, straight from and into the channels-last images, with the
 * sparse matrices (interpolation points 0, +-1, +-2, +-1/2, infinity; impasto.winograd.F6_MATRICES)
 * applied as separable 1-D transforms with shared sums (rows, then columns): about 15 operations
 * per input value instead of 128, no gathered copy.
 *
 *   input_transform:  x (B, H, W, C) channels-last  ->  v (64, T, C),  T = B * ceil(H/6) * ceil(W/6),
 *                     tile (ti, tj) reading rows 6 ti - 1 ... 6 ti + 6 and columns 6 tj - 1 ... 6 tj + 6,
 *                     zero outside the image (the convolution's padding of 1);
 *   output_transform: m (64, T, C)  ->  y (B, H, W, C) channels-last, plus an optional bias per channel,
 *                     the tiles' rows and columns beyond H and W dropped.
 *
 * Point (a, e) of a tile is index 8 a + e (a: along the rows), as in impasto.winograd.transform_weight.
 * Eight channels at a time as GCC/Clang vector-extension values (one AVX register where the CPU has
 * AVX2: an AVX2+FMA clone of each kernel is picked at load time, a plain x86-64 one otherwise); the
 * tiles are split between `threads` POSIX threads. float32 only; the caller checks shapes and layout.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <string.h>

#define VEC 8
typedef float vf __attribute__((vector_size(VEC * sizeof(float))));

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define CLONES
#endif

/* Load/store n <= VEC floats; the missing lanes read as zero. */
static inline vf load_n(const float *p, long n) {
    vf v = {0};
    if (n == VEC) memcpy(&v, p, sizeof v);
    else memcpy(&v, p, (size_t)n * sizeof(float));
    return v;
}

static inline void store_n(float *p, vf v, long n) {
    if (n == VEC) memcpy(p, &v, sizeof v);
    else memcpy(p, &v, (size_t)n * sizeof(float));
}

#define M 6          /* output tile */
#define A (M + 2)    /* input tile */

/* B^T of F(6, 3) applied to d[0..7] (rows of impasto.winograd.F6_MATRICES[0]), with shared sums. */
static inline void bt8(const vf *d, vf *o) {
    const vf p = d[2] + d[6] - 4.25f * d[4], q = d[1] + d[5] - 4.25f * d[3];
    const vf r = 0.25f * d[2] - 1.25f * d[4] + d[6], s = 0.5f * d[1] - 2.5f * d[3] + 2.0f * d[5];
    const vf u = 4.0f * d[2] - 5.0f * d[4] + d[6], w = 2.0f * d[1] - 2.5f * d[3] + 0.5f * d[5];
    o[0] = d[0] - d[6] + 5.25f * (d[4] - d[2]);
    o[1] = p + q;
    o[2] = p - q;
    o[3] = r + s;
    o[4] = r - s;
    o[5] = u + w;
    o[6] = u - w;
    o[7] = d[7] - d[1] + 5.25f * (d[3] - d[5]);
}

/* A^T of F(6, 3) (rows (1, p, p^2, ..., p^5) over the points 0, 1, -1, 2, -2, 1/2, -1/2, infinity) on m[0..7]. */
static inline void at8(const vf *m, vf *o) {
    const vf s1 = m[1] + m[2], d1 = m[1] - m[2], s2 = m[3] + m[4], d2 = m[3] - m[4];
    const vf s3 = m[5] + m[6], d3 = m[5] - m[6];
    o[0] = m[0] + s1 + s2 + s3;
    o[1] = d1 + 2.0f * d2 + 0.5f * d3;
    o[2] = s1 + 4.0f * s2 + 0.25f * s3;
    o[3] = d1 + 8.0f * d2 + 0.125f * d3;
    o[4] = s1 + 16.0f * s2 + 0.0625f * s3;
    o[5] = d1 + 32.0f * d2 + 0.03125f * d3 + m[7];
}

typedef struct {
    const float *src;
    float *dst;
    const float *bias;
    long batch, h, w, c, th, tw, first, last;
} Job;

CLONES static void input_tiles(const Job *j) {
    const long tiles = j->batch * j->th * j->tw, plane = tiles * j->c;
    for (long t = j->first; t < j->last; t++) {
        const long b = t / (j->th * j->tw), ti = (t / j->tw) % j->th, tj = t % j->tw;
        const float *image = j->src + b * j->h * j->w * j->c;
        for (long c = 0; c < j->c; c += VEC) {
            const long n = j->c - c < VEC ? j->c - c : VEC;
            vf d[A][A], rows[A][A], col[A], out[A];
            for (int r = 0; r < A; r++) {
                const long y = M * ti - 1 + r;
                for (int q = 0; q < A; q++) {
                    const long x = M * tj - 1 + q;
                    d[q][r] = (y >= 0 && y < j->h && x >= 0 && x < j->w)
                                  ? load_n(image + (y * j->w + x) * j->c + c, n) : (vf){0};
                }
            }
            for (int q = 0; q < A; q++) bt8(d[q], rows[q]);          /* B^T d: down each column q */
            for (int a = 0; a < A; a++) {                            /* (B^T d) B: along each row a */
                for (int q = 0; q < A; q++) col[q] = rows[q][a];
                bt8(col, out);
                for (int e = 0; e < A; e++) store_n(j->dst + (a * A + e) * plane + t * j->c + c, out[e], n);
            }
        }
    }
}

CLONES static void output_tiles(const Job *j) {
    const long tiles = j->batch * j->th * j->tw, plane = tiles * j->c;
    for (long t = j->first; t < j->last; t++) {
        const long b = t / (j->th * j->tw), ti = (t / j->tw) % j->th, tj = t % j->tw;
        float *image = j->dst + b * j->h * j->w * j->c;
        for (long c = 0; c < j->c; c += VEC) {
            const long n = j->c - c < VEC ? j->c - c : VEC;
            vf m[A][A], cols[A][M], row[A], out[M];
            for (int a = 0; a < A; a++)
                for (int e = 0; e < A; e++) m[e][a] = load_n(j->src + (a * A + e) * plane + t * j->c + c, n);
            for (int e = 0; e < A; e++) at8(m[e], cols[e]);          /* A^T m: down each column e */
            const vf bias = j->bias ? load_n(j->bias + c, n) : (vf){0};
            for (int i = 0; i < M; i++) {                            /* (A^T m) A: along each row i */
                const long y = M * ti + i;
                if (y >= j->h) break;
                for (int e = 0; e < A; e++) row[e] = cols[e][i];
                at8(row, out);
                for (int k = 0; k < M; k++) {
                    const long x = M * tj + k;
                    if (x < j->w) store_n(image + (y * j->w + x) * j->c + c, out[k] + bias, n);
                }
            }
        }
    }
}

static void *run_input(void *job) { input_tiles(job); return NULL; }
static void *run_output(void *job) { output_tiles(job); return NULL; }

/* Split the tiles between `threads` threads (the calling one included). */
static void parallel(void *(*fn)(void *), Job base, long threads) {
    enum { MAX_THREADS = 64 };
    const long tiles = base.batch * base.th * base.tw;
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > tiles) threads = tiles > 0 ? tiles : 1;
    Job jobs[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (long k = 0; k < threads; k++) {
        jobs[k] = base;
        jobs[k].first = tiles * k / threads;
        jobs[k].last = tiles * (k + 1) / threads;
    }
    for (long k = 1; k < threads; k++) started[k] = pthread_create(&ids[k], NULL, fn, &jobs[k]) == 0;
    fn(&jobs[0]);
    for (long k = 1; k < threads; k++) {
        if (started[k]) pthread_join(ids[k], NULL);
        else fn(&jobs[k]);  /* no thread to be had: do its share here */
    }
}

static PyObject *call(PyObject *args, void *(*fn)(void *)) {
    unsigned long long src, dst, bias;
    long long batch, h, w, c, threads;
    if (!PyArg_ParseTuple(args, "KKKLLLLL", &src, &dst, &bias, &batch, &h, &w, &c, &threads)) return NULL;
    Job job = {(const float *)(uintptr_t)src, (float *)(uintptr_t)dst, (const float *)(uintptr_t)bias,
               batch, h, w, c, (h + M - 1) / M, (w + M - 1) / M, 0, 0};
    Py_BEGIN_ALLOW_THREADS
    parallel(fn, job, threads);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_input(PyObject *self, PyObject *args) { return call(args, run_input); }
static PyObject *py_output(PyObject *self, PyObject *args) { return call(args, run_output); }

static PyMethodDef methods[] = {
    {"input_transform", py_input, METH_VARARGS,
     "input_transform(x_ptr, v_ptr, 0, B, H, W, C, threads): v (64, T, C) = B^T d B of every tile of x (B, H, W, C)"},
    {"output_transform", py_output, METH_VARARGS,
     "output_transform(m_ptr, y_ptr, bias_ptr or 0, B, H, W, C, threads): y (B, H, W, C) = A^T m A (+ bias)"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_winograd", "Winograd F(6x6, 3x3) tile transforms",
                                    -1, methods};

PyMODINIT_FUNC PyInit__winograd(void) { return PyModule_Create(&module); }
