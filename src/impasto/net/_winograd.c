/* Winograd F(6x6, 3x3) convolution kernels for impasto.net.winograd, in C (Lavin & Gray 2015, arXiv 1509.09308).
 *
 * impasto.net.winograd computes a 3x3 convolution as  Y = A^T [ (G g G^T) (.) (B^T d B) ] A  per 6x6 output
 * tile from an 8x8 input tile; summing over input channels before the output transform turns the 64
 * element-wise products into 64 matrix products M_xi = V_xi U_xi (ibid., section 4). Here the tile
 * transforms run straight from and into the channels-last images, with the sparse matrices
 * (interpolation points 0, +-1, +-2, +-1/2, infinity; impasto.net.winograd.F6_MATRICES) applied as
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
 *                     small enough to stay in cache between blocks; impasto.net.winograd.FUSED_MAX_WEIGHTS).
 *
 * Point (a, e) of a tile is index 8 a + e (a: along the rows), as in impasto.net.winograd.transform_weight.
 * Eight channels at a time as GCC/Clang vector-extension values (one AVX register where the CPU has
 * AVX2: an AVX2+FMA clone of each kernel is picked at load time, a plain x86-64 one otherwise); the
 * tiles (blocks) are split between `threads` POSIX threads (_kernels.h). float32 only; the arrays come
 * as buffers (NumPy arrays, a tensor's .numpy()), each checked against the dimensions given.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "_kernels.h"

/* x, or 0 where keep <= 0 (the ReLU and its gradient mask; a NaN is kept, as PyTorch's relu and
 * threshold_backward keep it). */
static inline vf where_positive(vf keep, vf x) { return (vf)((vi)x & ~(keep <= 0)); }

#define M 6          /* output tile */
#define A (M + 2)    /* input tile */

/* B^T of F(6, 3) applied to d[0..7] (rows of impasto.net.winograd.F6_MATRICES[0]), with shared sums. */
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
    long batch, h, w, c, th, tw;
    const float *u;                            /* fused: U packed in panels of NR output channels, */
    long cout;                                 /* the output channels */
} Job;  /* one per call, read by every thread; a thread's tiles (blocks when fused) and V, M: its Share */

/* B^T d B of one tile (ti, tj) of image (h, w, c), masked where mask (same shape, or NULL) is not
 * positive: point xi of channel k to dst[xi * plane + k]. */
INLINE void input_tile(const float *image, const float *mask, long h, long w, long c_all, long ti, long tj,
                       float *dst, long plane) {
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
INLINE void output_tile(const float *src, long plane, const float *bias, int relu, float *image, long h, long w,
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

CLONES static void input_tiles(const Job *j, const Share *s) {
    const long tiles = j->batch * j->th * j->tw, plane = tiles * j->c;
    for (long t = s->first; t < s->last; t++) {
        const long b = t / (j->th * j->tw), ti = (t / j->tw) % j->th, tj = t % j->tw;
        const long image = b * j->h * j->w * j->c;
        input_tile(j->src + image, j->mask ? j->mask + image : NULL, j->h, j->w, j->c, ti, tj, j->dst + t * j->c,
                   plane);
    }
}

CLONES static void output_tiles(const Job *j, const Share *s) {
    const long tiles = j->batch * j->th * j->tw, plane = tiles * j->c;
    for (long t = s->first; t < s->last; t++) {
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
INLINE void kernel(const float *v, long ldv, const float *u, long k_len, float *m, long ldm) {
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

CLONES static void fused_blocks(const Job *j, const Share *s) {
    const long tiles = j->batch * j->th * j->tw, panels = (j->cout + NR - 1) / NR, ldm = panels * NR;
    const long vplane = NB * j->c, mplane = NB * ldm;
    float *v = s->scratch, *m = v + A * A * vplane;
    for (long blk = s->first; blk < s->last; blk++) {
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

static void run_input(const void *job, const Share *s) { input_tiles(job, s); }
static void run_output(const void *job, const Share *s) { output_tiles(job, s); }
static void run_fused(const void *job, const Share *s) { fused_blocks(job, s); }

/* A Job on the arrays' memory (an optional one absent: NULL); ceil(H / 6) ceil(W / 6) tiles per image. */
static Job make_job(const Py_buffer *src, const Py_buffer *dst, const Py_buffer *bias, const Py_buffer *mask, int relu,
                    long long batch, long long h, long long w, long long c) {
    Job job = {0};
    job.src = src->buf, job.dst = dst->buf, job.bias = bias ? bias->buf : NULL, job.mask = mask ? mask->buf : NULL;
    job.relu = relu;
    job.batch = batch, job.h = h, job.w = w, job.c = c;
    job.th = (h + M - 1) / M, job.tw = (w + M - 1) / M;
    return job;
}

/* A^2 T C: the points of every tile of a (B, H, W) batch, C channels each (V, M); -1 with a ValueError. */
static Py_ssize_t tile_count(const char *call, long long batch, long long h, long long w, long long c) {
    if (count_of(call, 4, batch, h, w, c) < 0) return -1;
    return count_of(call, 5, (long long)(A * A), batch, (h + M - 1) / M, (w + M - 1) / M, c);
}

static PyObject *py_input(PyObject *self, PyObject *args) {
    const char *call = "input_transform";
    PyObject *x_obj, *v_obj, *mask_obj;
    long long batch, h, w, c, threads;
    if (!PyArg_ParseTuple(args, "OOOLLLLL", &x_obj, &v_obj, &mask_obj, &batch, &h, &w, &c, &threads)) return NULL;
    const Py_ssize_t image = count_of(call, 4, batch, h, w, c), points = tile_count(call, batch, h, w, c);
    if (image < 0 || points < 0) return NULL;
    Py_buffer b[3] = {{0}};  /* x, v, mask */
    if (get_buffer(call, "x", x_obj, 'f', image, 0, &b[0]) < 0 ||
        get_buffer(call, "v", v_obj, 'f', points, BUF_OUT, &b[1]) < 0 ||
        get_buffer(call, "mask", mask_obj, 'f', image, BUF_OPTIONAL, &b[2]) < 0) {
        release_buffers(b, 3);
        return NULL;
    }
    Job job = make_job(&b[0], &b[1], NULL, &b[2], 0, batch, h, w, c);
    Py_BEGIN_ALLOW_THREADS
    parallel(run_input, &job, batch * job.th * job.tw, threads, NULL, 0);
    Py_END_ALLOW_THREADS
    release_buffers(b, 3);
    Py_RETURN_NONE;
}

static PyObject *py_output(PyObject *self, PyObject *args) {
    const char *call = "output_transform";
    PyObject *m_obj, *y_obj, *bias_obj;
    long long batch, h, w, c, threads;
    int relu;
    if (!PyArg_ParseTuple(args, "OOOLLLLLp", &m_obj, &y_obj, &bias_obj, &batch, &h, &w, &c, &threads, &relu))
        return NULL;
    const Py_ssize_t image = count_of(call, 4, batch, h, w, c), points = tile_count(call, batch, h, w, c);
    if (image < 0 || points < 0) return NULL;
    Py_buffer b[3] = {{0}};  /* m, y, bias */
    if (get_buffer(call, "m", m_obj, 'f', points, 0, &b[0]) < 0 ||
        get_buffer(call, "y", y_obj, 'f', image, BUF_OUT, &b[1]) < 0 ||
        get_buffer(call, "bias", bias_obj, 'f', c, BUF_OPTIONAL, &b[2]) < 0) {
        release_buffers(b, 3);
        return NULL;
    }
    Job job = make_job(&b[0], &b[1], &b[2], NULL, relu, batch, h, w, c);
    Py_BEGIN_ALLOW_THREADS
    parallel(run_output, &job, batch * job.th * job.tw, threads, NULL, 0);
    Py_END_ALLOW_THREADS
    release_buffers(b, 3);
    Py_RETURN_NONE;
}

static PyObject *py_fused(PyObject *self, PyObject *args) {
    const char *call = "fused_conv";
    PyObject *x_obj, *y_obj, *u_obj, *bias_obj, *mask_obj;
    long long batch, h, w, cin, cout, threads;
    int relu;
    if (!PyArg_ParseTuple(args, "OOOOOLLLLLLp", &x_obj, &y_obj, &u_obj, &bias_obj, &mask_obj, &batch, &h, &w, &cin,
                          &cout, &threads, &relu))
        return NULL;
    const Py_ssize_t in = count_of(call, 4, batch, h, w, cin), out = count_of(call, 4, batch, h, w, cout);
    if (in < 0 || out < 0) return NULL;
    const long long panels = (cout + NR - 1) / NR;
    const Py_ssize_t packed = count_of(call, 4, (long long)(A * A), panels, cin, (long long)NR);
    if (packed < 0) return NULL;
    Py_buffer b[5] = {{0}};  /* x, y, packed U, bias, mask */
    if (get_buffer(call, "x", x_obj, 'f', in, 0, &b[0]) < 0 ||
        get_buffer(call, "y", y_obj, 'f', out, BUF_OUT, &b[1]) < 0 ||
        get_buffer(call, "packed", u_obj, 'f', packed, 0, &b[2]) < 0 ||
        get_buffer(call, "bias", bias_obj, 'f', cout, BUF_OPTIONAL, &b[3]) < 0 ||
        get_buffer(call, "mask", mask_obj, 'f', in, BUF_OPTIONAL, &b[4]) < 0) {
        release_buffers(b, 5);
        return NULL;
    }
    Job job = make_job(&b[0], &b[1], &b[3], &b[4], relu, batch, h, w, cin);
    job.u = b[2].buf;
    job.cout = cout;
    const long blocks = (batch * job.th * job.tw + NB - 1) / NB;
    const int done = parallel_scratch(run_fused, &job, blocks, threads, A * A * NB * (cin + panels * NR));
    release_buffers(b, 5);
    if (done < 0) return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"input_transform", py_input, METH_VARARGS,
     "input_transform(x, v, mask or None, B, H, W, C, threads): v (64, T, C) = B^T d B of every tile of\n"
     "x (B, H, W, C), x zeroed where the mask image (same shape) is not positive; float32 C-contiguous arrays"},
    {"output_transform", py_output, METH_VARARGS,
     "output_transform(m, y, bias or None, B, H, W, C, threads, relu): y (B, H, W, C) = A^T m A (+ bias),\n"
     "through a ReLU if relu; float32 C-contiguous arrays"},
    {"fused_conv", py_fused, METH_VARARGS,
     "fused_conv(x, y, packed_u, bias or None, mask or None, B, H, W, Cin, Cout, threads, relu):\n"
     "y = conv3x3(x masked) (+ bias), through a ReLU if relu; U packed by impasto.net.winograd.pack_weight;\n"
     "float32 C-contiguous arrays"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_winograd", "Winograd F(6x6, 3x3) convolution kernels",
                                    -1, methods};

PyMODINIT_FUNC PyInit__winograd(void) { return PyModule_Create(&module); }
