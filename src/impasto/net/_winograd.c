/* Winograd F(6x6, 3x3) convolution kernels for impasto.winograd, in C (Lavin & Gray 2015, arXiv 1509.09308).
 *
 * impasto.winograd computes a 3x3 convolution as  Y = A^T [ (G g G^T) (.) (B^T d B) ] A  per 6x6 output
 * tile from an 8x8 input tile; summing over input channels before the output transform turns the 64
 * element-wise products into 64 matrix products M_xi = V_xi U_xi (ibid., section 4). Here the tile
 * transforms run straight from and into the channels-last images, with the sparse matrices
 * (interpolation points 0, +-1, +-2, +-1/2, infinity; impasto.winograd.F6_MATRICES) applied as
 * separable 1-D transforms with shared sums (rows, then columns): about 15 operations per input
 * value instead of the 128 of a dense Kronecker product, no gathered copy.
 *
 *   input_transform:  x (B, H, W, C) channels-last  ->  v (64, T, C),  T = B * ceil(H/6) * ceil(W/6),
 *                     tile (ti, tj) reading rows 6 ti - 1 ... 6 ti + 6 and columns 6 tj - 1 ... 6 tj + 6,
 *                     zero outside the image (the convolution's padding of 1); optionally x masked
 *                     where a second image (the ReLU output of the forward pass) is not positive;
 *   output_transform: m (64, T, C)  ->  y (B, H, W, C) channels-last, plus an optional bias per channel,
 *                     optionally through a ReLU, the tiles' rows and columns beyond H and W dropped;
 *   fused_conv:       both, and the 64 products in between, per block of NB tiles: V and M of a block
 *                     stay in cache instead of going to memory at full size (for layers whose U is
 *                     small enough to stay in cache between blocks; impasto.winograd.FUSED_MAX_WEIGHTS).
 *
 * Point (a, e) of a tile is index 8 a + e (a: along the rows), as in impasto.winograd.transform_weight.
 * Eight channels at a time as GCC/Clang vector-extension values (one AVX register where the CPU has
 * AVX2: an AVX2+FMA clone of each kernel is picked at load time, a plain x86-64 one otherwise); the
 * tiles (blocks) are split between `threads` POSIX threads. float32 only; the caller checks shapes
 * and layout.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>

#define VEC 8
typedef float vf __attribute__((vector_size(VEC * sizeof(float))));
typedef int vi __attribute__((vector_size(VEC * sizeof(int))));

/* x, or 0 where keep <= 0 (the ReLU and its gradient mask; a NaN is kept, as PyTorch's relu and
 * threshold_backward keep it). */
static inline vf where_positive(vf keep, vf x) { return (vf)((vi)x & ~(keep <= 0)); }

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
    const float *mask;                         /* input_tile's mask, or NULL */
    int relu;                                  /* output_tile's ReLU */
    long batch, h, w, c, th, tw, first, last;  /* first, last: this thread's tiles (blocks when fused) */
    const float *u;                            /* fused: U packed in panels of NR output channels, */
    long cout;                                 /* the output channels, */
    float *scratch;                            /* and each thread's V and M of one block */
    long scratch_len;
} Job;

/* B^T d B of one tile (ti, tj) of image (h, w, c), masked where mask (same shape, or NULL) is not
 * positive: point xi of channel k to dst[xi * plane + k]. */
static inline __attribute__((always_inline)) void input_tile(const float *image, const float *mask, long h,
                                                             long w, long c_all, long ti, long tj, float *dst,
                                                             long plane) {
    for (long c = 0; c < c_all; c += VEC) {
        const long n = c_all - c < VEC ? c_all - c : VEC;
        vf d[A][A], rows[A][A], col[A], out[A];
        for (int r = 0; r < A; r++) {
            const long y = M * ti - 1 + r;
            for (int q = 0; q < A; q++) {
                const long x = M * tj - 1 + q;
                const long at = (y * w + x) * c_all + c;
                d[q][r] = (vf){0};
                if (y >= 0 && y < h && x >= 0 && x < w)
                    d[q][r] = mask ? where_positive(load_n(mask + at, n), load_n(image + at, n)) : load_n(image + at, n);
            }
        }
        for (int q = 0; q < A; q++) bt8(d[q], rows[q]);          /* B^T d: down each column q */
        for (int a = 0; a < A; a++) {                            /* (B^T d) B: along each row a */
            for (int q = 0; q < A; q++) col[q] = rows[q][a];
            bt8(col, out);
            for (int e = 0; e < A; e++) store_n(dst + (a * A + e) * plane + c, out[e], n);
        }
    }
}

/* A^T m A (+ bias, through a ReLU if relu) of one tile from src[xi * plane + k] into image (h, w, c),
 * rows/columns past h, w dropped. */
static inline __attribute__((always_inline)) void output_tile(const float *src, long plane, const float *bias,
                                                              int relu, float *image, long h, long w,
                                                              long c_all, long ti, long tj) {
    for (long c = 0; c < c_all; c += VEC) {
        const long n = c_all - c < VEC ? c_all - c : VEC;
        vf m[A][A], cols[A][M], row[A], out[M];
        for (int a = 0; a < A; a++)
            for (int e = 0; e < A; e++) m[e][a] = load_n(src + (a * A + e) * plane + c, n);
        for (int e = 0; e < A; e++) at8(m[e], cols[e]);          /* A^T m: down each column e */
        const vf b = bias ? load_n(bias + c, n) : (vf){0};
        for (int i = 0; i < M; i++) {                            /* (A^T m) A: along each row i */
            const long y = M * ti + i;
            if (y >= h) break;
            for (int e = 0; e < A; e++) row[e] = cols[e][i];
            at8(row, out);
            for (int k = 0; k < M; k++) {
                const long x = M * tj + k;
                const vf o = out[k] + b;
                if (x < w) store_n(image + (y * w + x) * c_all + c, relu ? where_positive(o, o) : o, n);
            }
        }
    }
}

CLONES static void input_tiles(const Job *j) {
    const long tiles = j->batch * j->th * j->tw, plane = tiles * j->c;
    for (long t = j->first; t < j->last; t++) {
        const long b = t / (j->th * j->tw), ti = (t / j->tw) % j->th, tj = t % j->tw;
        const long image = b * j->h * j->w * j->c;
        input_tile(j->src + image, j->mask ? j->mask + image : NULL, j->h, j->w, j->c, ti, tj, j->dst + t * j->c,
                   plane);
    }
}

CLONES static void output_tiles(const Job *j) {
    const long tiles = j->batch * j->th * j->tw, plane = tiles * j->c;
    for (long t = j->first; t < j->last; t++) {
        const long b = t / (j->th * j->tw), ti = (t / j->tw) % j->th, tj = t % j->tw;
        output_tile(j->src + t * j->c, plane, j->bias, j->relu, j->dst + b * j->h * j->w * j->c, j->h, j->w, j->c,
                    ti, tj);
    }
}

/* The fused convolution: per block of NB tiles, the input transform into a small V (64, NB, C) that
 * stays in cache, the 64 products M_xi = V_xi U_xi (NB x C times C x Cout) with a register-blocked
 * kernel, and the output transform from M; the full-size V and M never go to memory. U comes packed
 * as (64, ceil(Cout / NR), C, NR): panel p holds output channels NR p ... NR p + NR - 1, zero-padded. */
#define MR 6         /* tiles per kernel call */
#define NR 16        /* output channels per kernel call: two vectors */
#define NB (2 * MR)  /* tiles per block */

/* m[r][0..NR) = sum_k v[r ldv + k] u[k][0..NR) for r < MR: 12 accumulators, one FMA each per k. */
static inline __attribute__((always_inline)) void kernel(const float *v, long ldv, const float *u, long k_len,
                                                         float *m, long ldm) {
    vf acc[MR][2];
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = (vf){0};
    for (long k = 0; k < k_len; k++) {
        const vf u0 = load_n(u + NR * k, VEC), u1 = load_n(u + NR * k + VEC, VEC);
        for (int r = 0; r < MR; r++) {
            const float a = v[r * ldv + k];
            acc[r][0] += a * u0;
            acc[r][1] += a * u1;
        }
    }
    for (int r = 0; r < MR; r++) {
        store_n(m + r * ldm, acc[r][0], VEC);
        store_n(m + r * ldm + VEC, acc[r][1], VEC);
    }
}

CLONES static void fused_blocks(const Job *j) {
    const long tiles = j->batch * j->th * j->tw, panels = (j->cout + NR - 1) / NR, ldm = panels * NR;
    const long vplane = NB * j->c, mplane = NB * ldm;
    float *v = j->scratch, *m = v + A * A * vplane;
    for (long blk = j->first; blk < j->last; blk++) {
        const long t0 = blk * NB, count = tiles - t0 < NB ? tiles - t0 : NB;
        if (count < NB) memset(v, 0, sizeof(float) * A * A * vplane);
        for (long r = 0; r < count; r++) {
            const long t = t0 + r, b = t / (j->th * j->tw), ti = (t / j->tw) % j->th, tj = t % j->tw;
            const long image = b * j->h * j->w * j->c;
            input_tile(j->src + image, j->mask ? j->mask + image : NULL, j->h, j->w, j->c, ti, tj, v + r * j->c,
                       vplane);
        }
        for (int xi = 0; xi < A * A; xi++)
            for (long p = 0; p < panels; p++)
                for (long r = 0; r < NB; r += MR)
                    kernel(v + xi * vplane + r * j->c, j->c, j->u + (xi * panels + p) * j->c * NR, j->c,
                           m + xi * mplane + r * ldm + p * NR, ldm);
        for (long r = 0; r < count; r++) {
            const long t = t0 + r, b = t / (j->th * j->tw), ti = (t / j->tw) % j->th, tj = t % j->tw;
            output_tile(m + r * ldm, mplane, j->bias, j->relu, j->dst + b * j->h * j->w * j->cout, j->h, j->w,
                        j->cout, ti, tj);
        }
    }
}

static void *run_input(void *job) { input_tiles(job); return NULL; }
static void *run_output(void *job) { output_tiles(job); return NULL; }
static void *run_fused(void *job) { fused_blocks(job); return NULL; }

#include "../_parallel.h"

static Job make_job(unsigned long long src, unsigned long long dst, unsigned long long bias,
                    unsigned long long mask, int relu, long long batch, long long h, long long w, long long c) {
    Job job = {0};
    job.src = (const float *)(uintptr_t)src;
    job.dst = (float *)(uintptr_t)dst;
    job.bias = (const float *)(uintptr_t)bias;
    job.mask = (const float *)(uintptr_t)mask;
    job.relu = relu;
    job.batch = batch, job.h = h, job.w = w, job.c = c;
    job.th = (h + M - 1) / M, job.tw = (w + M - 1) / M;
    return job;
}

static PyObject *py_input(PyObject *self, PyObject *args) {
    unsigned long long src, dst, mask;
    long long batch, h, w, c, threads;
    if (!PyArg_ParseTuple(args, "KKKLLLLL", &src, &dst, &mask, &batch, &h, &w, &c, &threads)) return NULL;
    Job job = make_job(src, dst, 0, mask, 0, batch, h, w, c);
    Py_BEGIN_ALLOW_THREADS
    parallel(run_input, job, batch * job.th * job.tw, threads);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_output(PyObject *self, PyObject *args) {
    unsigned long long src, dst, bias;
    long long batch, h, w, c, threads;
    int relu;
    if (!PyArg_ParseTuple(args, "KKKLLLLLp", &src, &dst, &bias, &batch, &h, &w, &c, &threads, &relu)) return NULL;
    Job job = make_job(src, dst, bias, 0, relu, batch, h, w, c);
    Py_BEGIN_ALLOW_THREADS
    parallel(run_output, job, batch * job.th * job.tw, threads);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_fused(PyObject *self, PyObject *args) {
    unsigned long long src, dst, u, bias, mask;
    long long batch, h, w, cin, cout, threads;
    int relu;
    if (!PyArg_ParseTuple(args, "KKKKKLLLLLLp", &src, &dst, &u, &bias, &mask, &batch, &h, &w, &cin, &cout,
                          &threads, &relu))
        return NULL;
    Job job = make_job(src, dst, bias, mask, relu, batch, h, w, cin);
    job.u = (const float *)(uintptr_t)u;
    job.cout = cout;
    const long blocks = (batch * job.th * job.tw + NB - 1) / NB;
    job.scratch_len = A * A * NB * (cin + (cout + NR - 1) / NR * NR);
    return parallel_scratch(run_fused, job, blocks, threads);
}

static PyMethodDef methods[] = {
    {"input_transform", py_input, METH_VARARGS,
     "input_transform(x_ptr, v_ptr, mask_ptr or 0, B, H, W, C, threads): v (64, T, C) = B^T d B of every tile of\n"
     "x (B, H, W, C), x zeroed where the mask image (same shape) is not positive"},
    {"output_transform", py_output, METH_VARARGS,
     "output_transform(m_ptr, y_ptr, bias_ptr or 0, B, H, W, C, threads, relu): y (B, H, W, C) = A^T m A (+ bias),\n"
     "through a ReLU if relu"},
    {"fused_conv", py_fused, METH_VARARGS,
     "fused_conv(x_ptr, y_ptr, packed_u_ptr, bias_ptr or 0, mask_ptr or 0, B, H, W, Cin, Cout, threads, relu):\n"
     "y = conv3x3(x masked) (+ bias), through a ReLU if relu; U packed by impasto.winograd.pack_weight"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_winograd", "Winograd F(6x6, 3x3) convolution kernels",
                                    -1, methods};

PyMODINIT_FUNC PyInit__winograd(void) { return PyModule_Create(&module); }
