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
 * `threads` POSIX threads (_kernels.h). The arrays come as float32 buffers (NumPy arrays, a tensor's
 * .numpy()), each checked against the dimensions given.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include "_kernels.h"

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
} Job;  /* one per call, read by every thread; its Share: rows (conv: group * h + row) or channels (norm),
         * and norm's scratch, a row of w floats */

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

CLONES static void conv_rows(const Job *j, const Share *s) {
    for (long u = s->first; u < s->last; u++) {
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

CLONES static void norm_channels(const Job *j, const Share *s) {
    const long h = j->h, w = j->w_in, p = j->pad, hu = h * j->up, wu = w * j->up, wd = wu + 2 * p;
    const long skip_w = w + 2 * j->skip_pad, skip_plane = (h + 2 * j->skip_pad) * skip_w;
    float *row = s->scratch;
    for (long c = s->first; c < s->last; c++) {
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

static void run_conv(const void *job, const Share *s) { conv_rows(job, s); }
static void run_norm(const void *job, const Share *s) { norm_channels(job, s); }

static PyObject *py_conv(PyObject *self, PyObject *args) {
    const char *call = "conv";
    PyObject *x_obj, *y_obj, *w_obj, *bias_obj;
    long long c, o, k, h, w_out, ob, threads;
    if (!PyArg_ParseTuple(args, "OOOOLLLLLLL", &x_obj, &y_obj, &w_obj, &bias_obj, &c, &o, &k, &h, &w_out, &ob,
                          &threads))
        return NULL;
    if (ob != 3 && ob != 4) {
        PyErr_SetString(PyExc_ValueError, "conv: channels per group must be 3 or 4");
        return NULL;
    }
    if (k < 1) {
        PyErr_SetString(PyExc_ValueError, "conv: the kernel size must be at least 1");
        return NULL;
    }
    const Py_ssize_t out = count_of(call, 3, o, h, w_out);
    if (out < 0 || count_of(call, 2, c, k) < 0) return NULL;  /* each 0 ... 2^31 - 1 */
    const long long groups = (o + ob - 1) / ob;
    const Py_ssize_t packed = count_of(call, 5, groups, c, k, k, ob), biases = count_of(call, 2, groups, ob);
    const Py_ssize_t in = count_of(call, 3, c, h + k - 1, w_out + k - 1);
    if (packed < 0 || biases < 0 || in < 0) return NULL;
    Py_buffer b[4] = {{0}};  /* x, y, packed w, bias */
    if (get_buffer(call, "x", x_obj, 'f', in, 0, &b[0]) < 0 ||
        get_buffer(call, "y", y_obj, 'f', out, BUF_OUT, &b[1]) < 0 ||
        get_buffer(call, "w", w_obj, 'f', packed, 0, &b[2]) < 0 ||
        get_buffer(call, "bias", bias_obj, 'f', biases, 0, &b[3]) < 0) {
        release_buffers(b, 4);
        return NULL;
    }
    Job job = {0};
    job.x = b[0].buf, job.y = b[1].buf, job.w = b[2].buf, job.bias = b[3].buf;
    job.c = c, job.o = o, job.k = k, job.h = h, job.w_out = w_out, job.w_in = w_out + k - 1, job.ob = ob;
    Py_BEGIN_ALLOW_THREADS
    parallel(run_conv, &job, groups * h, threads, NULL, 0);
    Py_END_ALLOW_THREADS
    release_buffers(b, 4);
    Py_RETURN_NONE;
}

static PyObject *py_norm(PyObject *self, PyObject *args) {
    const char *call = "norm";
    PyObject *x_obj, *y_obj, *gamma_obj, *beta_obj, *skip_obj;
    long long c, h, w, up, pad, skip_pad, threads;
    int relu;
    double eps;
    if (!PyArg_ParseTuple(args, "OOOOOLLLLLLpdL", &x_obj, &y_obj, &gamma_obj, &beta_obj, &skip_obj, &c, &h, &w, &up,
                          &pad, &skip_pad, &relu, &eps, &threads))
        return NULL;
    const Py_ssize_t in = count_of(call, 3, c, h, w);
    if (in < 0 || count_of(call, 2, pad, skip_pad) < 0) return NULL;  /* each 0 ... 2^31 - 1 */
    if ((up != 1 && up != 2) || pad >= h * up || pad >= w * up) {
        PyErr_SetString(PyExc_ValueError,
                        "norm: up must be 1 or 2, and the padding smaller than the (upsampled) image");
        return NULL;
    }
    const Py_ssize_t out = count_of(call, 3, c, up * h + 2 * pad, up * w + 2 * pad);
    const Py_ssize_t skips = count_of(call, 3, c, h + 2 * skip_pad, w + 2 * skip_pad);
    if (out < 0 || skips < 0) return NULL;
    Py_buffer b[5] = {{0}};  /* x, y, gamma, beta, skip */
    if (get_buffer(call, "x", x_obj, 'f', in, 0, &b[0]) < 0 ||
        get_buffer(call, "y", y_obj, 'f', out, BUF_OUT, &b[1]) < 0 ||
        get_buffer(call, "gamma", gamma_obj, 'f', c, BUF_OPTIONAL, &b[2]) < 0 ||
        get_buffer(call, "beta", beta_obj, 'f', c, b[2].buf ? 0 : BUF_OPTIONAL, &b[3]) < 0 ||
        get_buffer(call, "skip", skip_obj, 'f', skips, BUF_OPTIONAL, &b[4]) < 0) {
        release_buffers(b, 5);
        return NULL;
    }
    Job job = {0};
    job.x = b[0].buf, job.y = b[1].buf, job.gamma = b[2].buf, job.beta = b[3].buf, job.skip = b[4].buf;
    job.h = h, job.w_in = w, job.up = up, job.pad = pad, job.skip_pad = skip_pad, job.relu = relu;
    job.eps = (float)eps;
    const int done = parallel_scratch(run_norm, &job, c, threads, w);
    release_buffers(b, 5);
    if (done < 0) return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"conv", py_conv, METH_VARARGS,
     "conv(x, y, packed_w, bias, C, O, K, H, W, OB, threads): y (O, H, W) = bias + the stride-1 KxK\n"
     "convolution of the padded x (C, H + K - 1, W + K - 1); w packed (ceil(O/OB), C, K, K, OB), bias\n"
     "(ceil(O/OB) OB); float32 C-contiguous arrays"},
    {"norm", py_norm, METH_VARARGS,
     "norm(x, y, gamma or None, beta or None, skip or None, C, H, W, up, pad, skip_pad, relu, eps, threads):\n"
     "y (C, up H + 2 pad, up W + 2 pad) = reflection-padded, nearest-upsampled (up 1 or 2) relu?(instance_norm(x)\n"
     "gamma + beta (+ skip)), gamma and beta (C), skip (C, H, W) inside a buffer padded by skip_pad; no gamma:\n"
     "x itself, not normalised; float32 C-contiguous arrays"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_transform",
                                    "Kernels for the transform network's pass on planar float32 images", -1, methods};

PyMODINIT_FUNC PyInit__transform(void) { return PyModule_Create(&module); }
