/* The reliability of an optical flow for impasto.image.flow.reliability, in C: the forward-backward
 * consistency check and motion-boundary test of Ruder, Dosovitskiy & Brox 2016 (section 3.2, their
 * consistencyChecker; constants from Sundaram, Brox & Keutzer 2010), then their blur.
 *
 *   reliability(backward, forward, out, H, W, taps, radius, dis_rel, dis_abs, edge_rel, edge_abs, blur):
 *     backward = flow(frame_t, frame_t-1) (w^), forward = flow(frame_t-1, frame_t) (w), both (H, W, 2)
 *     float64; out (H, W) float32: 0 where x + w^(x) leaves the frame, where the flows disagree
 *     (|w~ + w^|^2 >= dis_rel (|w~|^2 + |w^|^2) + dis_abs, w~(x) = w(x + w^(x)) bilinearly, border
 *     replicated) or at a motion boundary (|grad u^|^2 + |grad v^|^2 > edge_rel |w^|^2 + edge_abs,
 *     central differences, edge pixel repeated); else 1. With blur: disagreeing pixels -1 (so that the
 *     blur spreads the hole outward), the others as above, a separable blur by `taps` (2 radius + 1 of
 *     them, borders mirrored with the edge pixel repeated), clipped to [0, 1].
 *
 * The same operations in the same order as the NumPy code it replaces (impasto.image.flow, kept as the
 * fallback where this did not build), in double precision and without fused multiply-adds
 * (-ffp-contract=off in setup.py): the same values bit for bit, in one pass over the pixels
 * instead of some ninety NumPy calls (the fast mode's flow guide at 96 px: 1.8 -> ~0.1 ms). The arrays
 * come as buffers (NumPy arrays), each checked against the dimensions given (_kernels.h).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include "_kernels.h"

/* i mirrored into 0 ... n - 1 with the edge repeated (NumPy's pad mode "symmetric"). */
static long mirror(long i, long n) {
    const long period = 2 * n;
    long m = i % period;
    if (m < 0) m += period;
    return m >= n ? period - 1 - m : m;
}

/* w~ (x) = w(x + w^(x)): the forward flow at the backward flow's end point, bilinear, border replicate. */
static void warped_forward(const double *bw, const double *fw, long h, long w, long y, long x, double out[2]) {
    const double fx = bw[(y * w + x) * 2], fy = bw[(y * w + x) * 2 + 1];
    double xs = (double)x + fx, ys = (double)y + fy;
    /* clamped into the frame; a NaN becomes 0 (NumPy's form could not index with it either) */
    xs = xs > 0.0 ? (xs < (double)(w - 1) ? xs : (double)(w - 1)) : 0.0;
    ys = ys > 0.0 ? (ys < (double)(h - 1) ? ys : (double)(h - 1)) : 0.0;
    long x0 = (long)xs, y0 = (long)ys;
    if (x0 > (w - 2 > 0 ? w - 2 : 0)) x0 = w - 2 > 0 ? w - 2 : 0;
    if (y0 > (h - 2 > 0 ? h - 2 : 0)) y0 = h - 2 > 0 ? h - 2 : 0;
    const double ax = xs - (double)x0, ay = ys - (double)y0;
    const long dx = w > 1 ? 1 : 0, dy = h > 1 ? w : 0, i00 = y0 * w + x0;
    for (int k = 0; k < 2; k++) {
        const double top = (double)fw[i00 * 2 + k] * (1 - ax) + (double)fw[(i00 + dx) * 2 + k] * ax;
        const double bottom = (double)fw[(i00 + dy) * 2 + k] * (1 - ax) + (double)fw[(i00 + dy + dx) * 2 + k] * ax;
        out[k] = top * (1 - ay) + bottom * ay;
    }
}

/* (d/dx)^2 + (d/dy)^2 of channel k of the backward flow, central differences, edge pixel repeated. */
static double gradient_sq(const double *bw, long h, long w, long y, long x, int k) {
    const long xl = x > 0 ? x - 1 : 0, xr = x < w - 1 ? x + 1 : w - 1;
    const long yu = y > 0 ? y - 1 : 0, yd = y < h - 1 ? y + 1 : h - 1;
    const double gx = 0.5 * ((double)bw[(y * w + xr) * 2 + k] - (double)bw[(y * w + xl) * 2 + k]);
    const double gy = 0.5 * ((double)bw[(yd * w + x) * 2 + k] - (double)bw[(yu * w + x) * 2 + k]);
    return gx * gx + gy * gy;
}

typedef struct { double dis_rel, dis_abs, edge_rel, edge_abs; } Constants;

/* 1 reliable, 0 outside or at a motion boundary, -1 where the flows disagree (blur) or 0 (no blur). */
static double check(const double *bw, const double *fw, long h, long w, long y, long x, const Constants *k,
                    int blur) {
    const double bx = (double)x + (double)bw[(y * w + x) * 2], by = (double)y + (double)bw[(y * w + x) * 2 + 1];
    if (bx < 0 || bx > (double)(w - 1) || by < 0 || by > (double)(h - 1)) return 0.0;
    double wt[2];
    warped_forward(bw, fw, h, w, y, x, wt);
    const double b0 = bw[(y * w + x) * 2], b1 = bw[(y * w + x) * 2 + 1];
    const double bw_sq = b0 * b0 + b1 * b1, s0 = wt[0] + b0, s1 = wt[1] + b1;
    if (s0 * s0 + s1 * s1 >= k->dis_rel * ((wt[0] * wt[0] + wt[1] * wt[1]) + bw_sq) + k->dis_abs)
        return blur ? -1.0 : 0.0;
    const double edge = gradient_sq(bw, h, w, y, x, 0) + gradient_sq(bw, h, w, y, x, 1);
    return edge > k->edge_rel * bw_sq + k->edge_abs ? 0.0 : 1.0;
}

static PyObject *py_reliability(PyObject *self, PyObject *args) {
    const char *call = "reliability";
    PyObject *bw_obj, *fw_obj, *out_obj, *taps_obj;
    long long h, w, radius;
    Constants k;
    int blur;
    if (!PyArg_ParseTuple(args, "OOOLLOLddddp", &bw_obj, &fw_obj, &out_obj, &h, &w, &taps_obj, &radius, &k.dis_rel,
                          &k.dis_abs, &k.edge_rel, &k.edge_abs, &blur))
        return NULL;
    const Py_ssize_t pixels = count_of(call, 2, h, w);
    if (pixels < 0 || count_of(call, 1, radius) < 0) return NULL;
    if (h < 1 || w < 1) {
        PyErr_SetString(PyExc_ValueError, "reliability: the flows must have at least one pixel");
        return NULL;
    }
    Py_buffer b[4] = {{0}};  /* backward, forward, out, taps */
    if (get_buffer(call, "backward", bw_obj, 'd', 2 * pixels, 0, &b[0]) < 0 ||
        get_buffer(call, "forward", fw_obj, 'd', 2 * pixels, 0, &b[1]) < 0 ||
        get_buffer(call, "out", out_obj, 'f', pixels, BUF_OUT, &b[2]) < 0 ||
        get_buffer(call, "taps", taps_obj, 'd', 2 * radius + 1, 0, &b[3]) < 0) {
        release_buffers(b, 4);
        return NULL;
    }
    const double *bw = b[0].buf, *fw = b[1].buf, *taps = b[3].buf;
    float *out = b[2].buf;
    double *c = malloc(sizeof(double) * (size_t)(h * w * (blur ? 2 : 1)));
    long *at = malloc(sizeof(long) * (size_t)(w + h + 4 * radius + 2));  /* the blur's mirrored indices */
    if (!c || !at) {
        free(c), free(at);
        release_buffers(b, 4);
        return PyErr_NoMemory();
    }
    long *at_x = at + radius, *at_y = at + w + 3 * radius + 1;
    for (long i = -radius; i < w + radius; i++) at_x[i] = mirror(i, w);
    for (long i = -radius; i < h + radius; i++) at_y[i] = mirror(i, h);
    Py_BEGIN_ALLOW_THREADS
    for (long y = 0; y < h; y++)
        for (long x = 0; x < w; x++) c[y * w + x] = check(bw, fw, h, w, y, x, &k, blur);
    if (!blur) {
        for (long i = 0; i < h * w; i++) out[i] = (float)c[i];
    } else {
        double *rows = c + h * w;  /* along the rows first, then down the columns, as NumPy's sums */
        for (long y = 0; y < h; y++)
            for (long x = 0; x < w; x++) {
                double s = 0.0;
                for (long t = 0; t <= 2 * radius; t++) s = s + taps[t] * c[y * w + at_x[x + t - radius]];
                rows[y * w + x] = s;
            }
        for (long y = 0; y < h; y++)
            for (long x = 0; x < w; x++) {
                double s = 0.0;
                for (long t = 0; t <= 2 * radius; t++) s = s + taps[t] * rows[at_y[y + t - radius] * w + x];
                out[y * w + x] = (float)(s < 0.0 ? 0.0 : s > 1.0 ? 1.0 : s);
            }
    }
    Py_END_ALLOW_THREADS
    free(c), free(at);
    release_buffers(b, 4);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"reliability", py_reliability, METH_VARARGS,
     "reliability(backward, forward, out, H, W, taps, radius, dis_rel, dis_abs, edge_rel, edge_abs, blur):\n"
     "the reliability out (H, W) float32 of two (H, W, 2) float64 flows (Ruder et al. 2016), taps (2 radius + 1)\n"
     "float64; C-contiguous arrays"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_flow", "The reliability of an optical flow", -1,
                                    methods};

PyMODINIT_FUNC PyInit__flow(void) { return PyModule_Create(&module); }
