/* Kernels for one image's pass through impasto.fast's transform network (Johnson, Alahi & Fei-Fei 2016,
 * impasto.fast.network) in float32 on CPU, images planar (C, H, W), used by impasto.fast.planar.
 *
 * The network's widest layers have few channels (3 -> 8 -> ... -> 8 -> 3 at width 0.25): too few for the
 * channel-vectorised kernels of oneDNN (the 9x9 convolution to RGB runs at a sixth of the machine's peak
 * there) and many passes over the image between them (padding, normalisation, ReLU, upsampling,
 * layout copies). Here:
 *
 *   conv: y (O, H, W) = bias + w (O, C, K, K) (*) x (C, H + K - 1, W + K - 1), a stride-1 convolution
 *         of an image padded beforehand, vectorised along the rows: every step loads PB vectors of 8
 *         neighbouring input pixels and updates OB output channels with them (12 accumulators, one FMA
 *         per weight and pixel); w comes packed as (ceil(O / OB), C, K, K, OB), zero-padded
 *         (impasto.fast.planar.pack_weight);
 *   norm: instance normalisation (Ulyanov, Vedaldi & Lempitsky 2016) of x (C, H, W) with a scale and
 *         shift per channel (conditional instance norm, Dumoulin et al. 2017, mixed by the caller),
 *         then a ReLU or a residual shortcut (+ skip, He et al. 2016), written x`up` nearest-upsampled
 *         and reflection-padded by `pad` straight into the next convolution's input
 *         (C, up H + 2 pad, up W + 2 pad): one read and one write per pixel instead of four passes
 *         (without a scale, the image only upsampled and padded).
 *
 * Eight floats at a time as GCC/Clang vector-extension values (an AVX2+FMA clone of each kernel is
 * picked at load time, a plain x86-64 one otherwise); rows (conv) or channels (norm) are split between
 * `threads` POSIX threads. The caller checks shapes, layout and dtype.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define VEC 8
typedef float vf __attribute__((vector_size(VEC * sizeof(float))));

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

typedef struct {
    const float *x, *w, *bias, *skip;
    float *y;
    long c, o, k, h, w_out;     /* conv: input channels, output channels, kernel, output size */
    long ob;                    /* conv: output channels per packed group (3 or 4) */
    long w_in;                  /* conv: padded input width; norm: input width */
    long up, pad, skip_pad;     /* norm */
    int relu;
    float eps;
    const float *gamma, *beta;
    float *scratch;             /* norm: a row of w floats for each thread */
    long scratch_len;
    long first, last;           /* this thread's rows (conv: group * h + row) or channels (norm) */
} Job;

/* ------------------------------------------------------------------------------------------- conv */

/* Output row `row`, pixels x0 ... x0 + VEC PB - 1 (the last vector n lanes), of OB channels of group g. */
INLINE void conv_step(const Job *j, long g, long row, long x0, const int OB, const int PB, long n) {
    const long k = j->k, plane = (j->h + k - 1) * j->w_in;
    const float *wg = j->w + g * j->c * k * k * OB;
    vf acc[4][4];
    for (int o = 0; o < OB; o++)
        for (int p = 0; p < PB; p++) acc[o][p] = (vf){0} + j->bias[g * OB + o];
    for (long c = 0; c < j->c; c++)
        for (long ky = 0; ky < k; ky++) {
            const float *in = j->x + c * plane + (row + ky) * j->w_in + x0;
            const float *wr = wg + (c * k + ky) * k * OB;
            for (long kx = 0; kx < k; kx++) {
                vf v[4];
                for (int p = 0; p < PB; p++) v[p] = load_n(in + kx + p * VEC, p == PB - 1 ? n : VEC);
                for (int o = 0; o < OB; o++) {
                    const float weight = wr[kx * OB + o];
                    for (int p = 0; p < PB; p++) acc[o][p] += weight * v[p];
                }
            }
        }
    for (int o = 0; o < OB && g * OB + o < j->o; o++)
        for (int p = 0; p < PB; p++)
            store_n(j->y + ((g * OB + o) * j->h + row) * j->w_out + x0 + p * VEC, acc[o][p], p == PB - 1 ? n : VEC);
}

/* One output row of a group: blocks of PB vectors, then single vectors, then the last partial one. */
INLINE void conv_row(const Job *j, long g, long row, const int OB, const int PB) {
    long x0 = 0;
    for (; x0 + PB * VEC <= j->w_out; x0 += PB * VEC) conv_step(j, g, row, x0, OB, PB, VEC);
    for (; x0 + VEC <= j->w_out; x0 += VEC) conv_step(j, g, row, x0, OB, 1, VEC);
    if (x0 < j->w_out) conv_step(j, g, row, x0, OB, 1, j->w_out - x0);
}

CLONES static void conv_rows(const Job *j) {
    for (long u = j->first; u < j->last; u++) {
        if (j->ob == 4) conv_row(j, u / j->h, u % j->h, 4, 3);
        else conv_row(j, u / j->h, u % j->h, 3, 4);
    }
}

/* ------------------------------------------------------------------------------------------- norm */

/* i reflected into 0 ... n - 1 (ReflectionPad2d: the edge pixel is not repeated). */
INLINE long reflect(long i, long n) { return i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i; }

INLINE float sum_of(const float *x, long n, float shift) {
    vf a0 = {0}, a1 = {0};
    long i = 0;
    for (; i + 2 * VEC <= n; i += 2 * VEC) {
        const vf d0 = load_n(x + i, VEC) - shift, d1 = load_n(x + i + VEC, VEC) - shift;
        a0 += d0, a1 += d1;
    }
    float s = 0;
    for (; i < n; i++) s += x[i] - shift;
    for (int l = 0; l < VEC; l++) s += a0[l] + a1[l];
    return s;
}

INLINE float squares_of(const float *x, long n, float mean) {
    vf a0 = {0}, a1 = {0};
    long i = 0;
    for (; i + 2 * VEC <= n; i += 2 * VEC) {
        const vf d0 = load_n(x + i, VEC) - mean, d1 = load_n(x + i + VEC, VEC) - mean;
        a0 += d0 * d0, a1 += d1 * d1;
    }
    float s = 0;
    for (; i < n; i++) s += (x[i] - mean) * (x[i] - mean);
    for (int l = 0; l < VEC; l++) s += a0[l] + a1[l];
    return s;
}

/* Row r of the normalised channel (+ skip row, through the ReLU) into out[0 ... w). */
INLINE void norm_row(const Job *j, const float *src, const float *skip, float scale, float shift, float *out) {
    for (long x = 0; x < j->w_in; x++) {
        float v = src[x] * scale + shift;
        if (skip) v += skip[x];
        out[x] = j->relu && v < 0 ? 0.0f : v;  /* a NaN passes, as torch.relu lets it */
    }
}

CLONES static void norm_channels(const Job *j) {
    const long h = j->h, w = j->w_in, p = j->pad, hu = h * j->up, wu = w * j->up, wd = wu + 2 * p;
    const long skip_w = w + 2 * j->skip_pad, skip_plane = (h + 2 * j->skip_pad) * skip_w;
    float *row = j->scratch;
    for (long c = j->first; c < j->last; c++) {
        const float *src = j->x + c * h * w;
        float scale = 1.0f, shift = 0.0f;  /* no gamma: copied as it is (upsampled, padded) */
        if (j->gamma) {
            /* two passes (mean, then the squared deviations), shifted by the first pixel against cancellation */
            const float first = src[0], mean = first + sum_of(src, h * w, first) / (float)(h * w);
            const float var = squares_of(src, h * w, mean) / (float)(h * w);
            scale = j->gamma[c] / sqrtf(var + j->eps), shift = j->beta[c] - mean * scale;
        }
        float *dst = j->y + c * (hu + 2 * p) * wd;
        long done = -1;
        for (long yd = 0; yd < hu + 2 * p; yd++) {
            const long r = reflect(yd - p, hu) / j->up;
            if (r != done) {
                const float *skip = j->skip ? j->skip + c * skip_plane + (r + j->skip_pad) * skip_w + j->skip_pad : NULL;
                norm_row(j, src + r * w, skip, scale, shift, row);
                done = r;
            }
            float *d = dst + yd * wd;
            if (j->up == 1) memcpy(d + p, row, sizeof(float) * (size_t)w);
            else
                for (long x = 0; x < w; x++) d[p + 2 * x] = d[p + 2 * x + 1] = row[x];
            for (long x = 0; x < p; x++) {
                d[x] = d[p + reflect(x - p, wu)];
                d[p + wu + x] = d[p + reflect(wu + x, wu)];
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------- glue */

#include "../_parallel.h"

static void *run_conv(void *job) { conv_rows(job); return NULL; }
static void *run_norm(void *job) { norm_channels(job); return NULL; }

#define PTR(v) ((const float *)(uintptr_t)(v))

static PyObject *py_conv(PyObject *self, PyObject *args) {
    unsigned long long x, y, w, bias;
    long long c, o, k, h, w_out, ob, threads;
    if (!PyArg_ParseTuple(args, "KKKKLLLLLLL", &x, &y, &w, &bias, &c, &o, &k, &h, &w_out, &ob, &threads))
        return NULL;
    if (ob != 3 && ob != 4) {
        PyErr_SetString(PyExc_ValueError, "conv: channels per group must be 3 or 4");
        return NULL;
    }
    Job job = {0};
    job.x = PTR(x), job.y = (float *)(uintptr_t)y, job.w = PTR(w), job.bias = PTR(bias);
    job.c = c, job.o = o, job.k = k, job.h = h, job.w_out = w_out, job.w_in = w_out + k - 1, job.ob = ob;
    Py_BEGIN_ALLOW_THREADS
    parallel(run_conv, job, (o + ob - 1) / ob * h, threads);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_norm(PyObject *self, PyObject *args) {
    unsigned long long x, y, gamma, beta, skip;
    long long c, h, w, up, pad, skip_pad, threads;
    int relu;
    double eps;
    if (!PyArg_ParseTuple(args, "KKKKKLLLLLLpdL", &x, &y, &gamma, &beta, &skip, &c, &h, &w, &up, &pad, &skip_pad,
                          &relu, &eps, &threads))
        return NULL;
    if (up < 1 || pad < 0 || pad >= h * up || pad >= w * up) {
        PyErr_SetString(PyExc_ValueError, "norm: the padding must be smaller than the (upsampled) image");
        return NULL;
    }
    Job job = {0};
    job.x = PTR(x), job.y = (float *)(uintptr_t)y, job.gamma = gamma ? PTR(gamma) : NULL, job.beta = PTR(beta);
    job.skip = skip ? PTR(skip) : NULL;
    job.h = h, job.w_in = w, job.up = up, job.pad = pad, job.skip_pad = skip_pad, job.relu = relu;
    job.eps = (float)eps;
    job.scratch_len = w;
    return parallel_scratch(run_norm, job, c, threads);
}

static PyMethodDef methods[] = {
    {"conv", py_conv, METH_VARARGS,
     "conv(x_ptr, y_ptr, packed_w_ptr, bias_ptr, C, O, K, H, W, OB, threads): y (O, H, W) = bias + the\n"
     "stride-1 KxK convolution of the padded x (C, H + K - 1, W + K - 1); w packed (ceil(O/OB), C, K, K, OB)"},
    {"norm", py_norm, METH_VARARGS,
     "norm(x_ptr, y_ptr, gamma_ptr or 0, beta_ptr, skip_ptr or 0, C, H, W, up, pad, skip_pad, relu, eps, threads):\n"
     "y (C, up H + 2 pad, up W + 2 pad) = reflection-padded, nearest-upsampled relu?(instance_norm(x) gamma\n"
     "+ beta (+ skip)), skip (C, H, W) inside a buffer padded by skip_pad; no gamma: x itself, not normalised"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_transform",
                                    "Kernels for the transform network's pass on planar float32 images", -1, methods};

PyMODINIT_FUNC PyInit__transform(void) { return PyModule_Create(&module); }
